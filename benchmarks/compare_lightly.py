"""Methods side by side: selfsup vs lightly on the identical network, data, budget and recipe.

For SimCLR, MoCo v2, BYOL, Barlow Twins, VICReg, SimSiam, NNCLR, SwAV and DINO (the last two
with multi-crop) each library trains in its own subprocess (so peak memory is its own), then
every encoder is scored by the same weighted kNN (k=200, τ=0.1) on the 10k Fashion-MNIST test
images; DrLIM and CPC (which lightly lacks) run in selfsup alone, and a random-init encoder and
the raw pixels give the floors. Each method uses its bundled selfsup recipe
(`configs/<method>-fashion-mnist.yaml`); lightly runs its recommended pipeline for the method
(its transform on PIL images in DataLoader workers, its heads, loss, momentum utilities and
LARS) set to the same encoder, head widths, optimiser, schedule and augmentation strengths.

    pip install -e ".[bench]"
    python benchmarks/compare_lightly.py --epochs 2                     # 2 CPU cores: ~1.5 h
    python benchmarks/compare_lightly.py --methods simclr --epochs 4    # one pair
    python benchmarks/compare_lightly.py --epochs 20 --base-width 64 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

from selfsup.config import load_config
from selfsup.data.stats import dataset_stats
from selfsup.eval import extract_features, knn_accuracy, make_preprocess
from selfsup.eval.suite import pixel_features
from selfsup.methods import build_method, build_views
from selfsup.models import build_encoder
from selfsup.optim import param_groups, scaled_learning_rate, warmup_cosine
from selfsup.pipeline import load_split
from selfsup.train import resolve_device, train

# Methods lightly also implements; DrLIM and CPC run in selfsup only (lightly has neither).
LIGHTLY_METHODS = (
    "simclr", "moco", "byol", "barlow_twins", "vicreg", "simsiam", "nnclr", "swav", "dino"
)  # fmt: skip
LIBRARIES = (
    "random",
    "pixels",
    "lightly",
    "selfsup",
    "lightly-on-selfsup-views",
    "selfsup-on-lightly-views",
)


def _config(args: argparse.Namespace):
    from selfsup.config import chosen_recipe, recipe_path

    overrides = {
        "model.base_width": args.base_width,
        "train.epochs": args.epochs,
        "train.device": args.device,
        "train.progress": False,
        "train.seed": args.seed,
    }
    if args.method != "cpc":  # CPC keeps its recipe's batch 64 (each image is 36 patch passes)
        overrides["train.batch_size"] = args.batch_size
    if args.train_subset is not None:  # otherwise the recipe's (CPC: 20k images)
        overrides["data.train_subset"] = args.train_subset
    return load_config(recipe_path(chosen_recipe(None, args.method)), overrides)


def _encoder(config, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_encoder(
        "resnet18",
        in_channels=1,
        stem="cifar",
        base_width=config.model.base_width,
        norm=config.model.norm,
    )


def _train_selfsup(
    config, images: torch.Tensor, mean, std, lightly_model: bool = False
) -> torch.nn.Module:
    """selfsup's loop, views and optimiser; with `lightly_model`, lightly's model and loss."""
    encoder = _encoder(config, config.train.seed)
    method = _LightlyInSelfsup(config, encoder) if lightly_model else build_method(encoder, config)
    with tempfile.TemporaryDirectory() as run_dir:
        train(method, images, build_views(config, images, mean, std), config, run_dir)
    return method.encoder


def _lightly_transform(config, size: int, mean, std):
    """lightly's recommended transform for the method, set to the selfsup recipe's strengths.

    selfsup's jitter of strength s draws brightness, contrast and saturation in 1 ± 0.8 s and hue
    in ±0.2 s, which is lightly's `cj_strength=s` with its SimCLR factors (0.8, 0.8, 0.8, 0.2).
    """
    from lightly.transforms import (
        BYOLTransform,
        BYOLView1Transform,
        BYOLView2Transform,
        DINOTransform,
        MoCoV2Transform,
        SimCLRTransform,
        SwaVTransform,
    )

    view = config.augment
    common = {
        "input_size": size,
        "cj_prob": view.jitter_p,
        "cj_strength": view.jitter_strength,
        "cj_bright": 0.8,
        "cj_contrast": 0.8,
        "cj_sat": 0.8,
        "cj_hue": 0.2,
        "min_scale": view.crop_scale[0],
        "random_gray_scale": view.grayscale_p,
        "sigmas": view.blur_sigma,
        "hf_prob": view.flip_p,
        "normalize": {"mean": list(mean), "std": list(std)},
    }
    name = config.method.name
    if name in ("simclr", "simsiam", "nnclr"):  # one symmetric pair
        return SimCLRTransform(gaussian_blur=view.blur_p, **common)
    if name == "moco":
        return MoCoV2Transform(gaussian_blur=view.blur_p, **common)
    multi = {key: common[key] for key in common if key not in ("input_size", "min_scale")}
    if name == "swav":
        return SwaVTransform(
            crop_sizes=(size, view.local_size),
            crop_counts=(2, view.local_crops),
            crop_min_scales=(view.crop_scale[0], view.local_crop_scale[0]),
            crop_max_scales=(view.crop_scale[1], view.local_crop_scale[1]),
            gaussian_blur=view.blur_p,
            **multi,
        )
    first, second = view.for_view(0), view.for_view(1)
    if name == "dino":
        return DINOTransform(
            global_crop_size=size,
            global_crop_scale=view.crop_scale,
            local_crop_size=view.local_size,
            local_crop_scale=view.local_crop_scale,
            n_local_views=view.local_crops,
            gaussian_blur=(first.blur_p, second.blur_p, first.blur_p),
            solarization_prob=second.solarize_p,
            **multi,
        )
    return BYOLTransform(
        view_1_transform=BYOLView1Transform(
            gaussian_blur=first.blur_p, solarization_prob=first.solarize_p, **common
        ),
        view_2_transform=BYOLView2Transform(
            gaussian_blur=second.blur_p, solarization_prob=second.solarize_p, **common
        ),
    )


class _LightlyModel(torch.nn.Module):
    """The method as lightly's examples build it: its heads, losses and momentum utilities."""

    def __init__(self, config, encoder: torch.nn.Module) -> None:
        super().__init__()
        from lightly.loss import (
            BarlowTwinsLoss,
            DINOLoss,
            NegativeCosineSimilarity,
            NTXentLoss,
            SwaVLoss,
            VICRegLoss,
        )
        from lightly.models.modules import (
            BarlowTwinsProjectionHead,
            BYOLPredictionHead,
            BYOLProjectionHead,
            DINOProjectionHead,
            MoCoProjectionHead,
            NNCLRPredictionHead,
            NNCLRProjectionHead,
            NNMemoryBankModule,
            SimCLRProjectionHead,
            SimSiamPredictionHead,
            SimSiamProjectionHead,
            SwaVProjectionHead,
            SwaVPrototypes,
        )
        from lightly.models.utils import deactivate_requires_grad

        self.name, method = config.method.name, config.method
        widths, features = list(config.model.head_widths), encoder.feature_dim
        self.backbone = encoder
        if self.name == "simclr":
            self.head = SimCLRProjectionHead(features, widths[0], widths[-1])
            self.criterion = NTXentLoss(temperature=method.temperature)
        elif self.name == "moco":
            self.head = MoCoProjectionHead(features, widths[0], widths[-1], len(widths))
            self.criterion = NTXentLoss(
                temperature=method.temperature, memory_bank_size=(method.queue_size, widths[-1])
            )
        elif self.name == "byol":
            self.head = BYOLProjectionHead(features, widths[0], widths[-1])
            hidden = method.predictor_widths[0]
            self.predictor = BYOLPredictionHead(widths[-1], hidden, widths[-1])
            self.criterion = NegativeCosineSimilarity()
        elif self.name == "barlow_twins":
            self.head = BarlowTwinsProjectionHead(features, widths[0], widths[-1])
            self.criterion = BarlowTwinsLoss(lambda_param=method.redundancy_weight)
        elif self.name == "vicreg":  # lightly's VICReg example uses the Barlow Twins head
            self.head = BarlowTwinsProjectionHead(features, widths[0], widths[-1])
            self.criterion = VICRegLoss(
                method.invariance_weight, method.variance_weight, method.covariance_weight
            )
        elif self.name == "simsiam":
            self.head = SimSiamProjectionHead(features, widths[0], widths[-1])
            hidden = method.predictor_hidden
            self.predictor = SimSiamPredictionHead(widths[-1], hidden, widths[-1])
            self.criterion = NegativeCosineSimilarity()
        elif self.name == "nnclr":
            self.head = NNCLRProjectionHead(features, widths[0], widths[-1])
            hidden = method.predictor_hidden
            self.predictor = NNCLRPredictionHead(widths[-1], hidden, widths[-1])
            self.memory = NNMemoryBankModule(size=(method.queue_size, widths[-1]))
            self.criterion = NTXentLoss(temperature=method.temperature)
        elif self.name == "swav":
            self.head = SwaVProjectionHead(features, widths[0], widths[-1])
            self.prototypes = SwaVPrototypes(
                widths[-1], method.prototypes, method.freeze_prototypes_steps
            )
            self.criterion = SwaVLoss(
                method.temperature, method.sinkhorn_iterations, method.epsilon
            )
        elif self.name == "dino":
            self.head = DINOProjectionHead(
                features, widths[0], widths[-1], method.prototypes, batch_norm=False
            )
            self.criterion = DINOLoss(
                method.prototypes,
                warmup_teacher_temp=method.teacher_temperature,
                teacher_temp=method.teacher_temperature,
                student_temp=method.student_temperature,
                center_momentum=method.center_momentum,
            )
        else:
            raise ValueError(f"lightly has no {self.name}")
        if self.name in ("moco", "byol", "dino"):
            self.backbone_momentum = copy.deepcopy(self.backbone)
            if self.name == "dino":  # its weight-normed layer cannot be deep-copied: rebuild
                self.head_momentum = DINOProjectionHead(
                    features, widths[0], widths[-1], method.prototypes, batch_norm=False
                )
                self.head_momentum.load_state_dict(self.head.state_dict())
            else:
                self.head_momentum = copy.deepcopy(self.head)
            deactivate_requires_grad(self.backbone_momentum)
            deactivate_requires_grad(self.head_momentum)
        self.momentum = getattr(method, "momentum", None)  # MoCo's m, BYOL's and DINO's base τ
        self.step = 0

    def _momentum(self, images: torch.Tensor) -> torch.Tensor:
        return self.head_momentum(self.backbone_momentum(images)).detach()

    def forward(self, *views: torch.Tensor) -> torch.Tensor:
        view_a, view_b = views[:2]
        if self.name in ("swav", "dino"):
            return self._multi_crop(views)
        if self.name in ("simsiam", "nnclr"):
            projections = [self.head(self.backbone(view)) for view in (view_a, view_b)]
            predictions = [self.predictor(projection) for projection in projections]
            if self.name == "simsiam":  # lightly's example: ½ D(p₀, z₁) + ½ D(p₁, z₀)
                return 0.5 * (
                    self.criterion(predictions[0], projections[1].detach())
                    + self.criterion(predictions[1], projections[0].detach())
                )
            neighbours = [
                self.memory(projections[0].detach(), update=False),
                self.memory(projections[1].detach(), update=True),
            ]
            return 0.5 * (
                self.criterion(neighbours[0], predictions[1])
                + self.criterion(neighbours[1], predictions[0])
            )
        if self.name in ("simclr", "barlow_twins", "vicreg"):
            return self.criterion(
                self.head(self.backbone(view_a)), self.head(self.backbone(view_b))
            )
        if self.name == "moco":
            return self.criterion(self.head(self.backbone(view_a)), self._momentum(view_b))
        predictions_a = self.predictor(self.head(self.backbone(view_a)))
        predictions_b = self.predictor(self.head(self.backbone(view_b)))
        return 0.5 * (
            self.criterion(predictions_a, self._momentum(view_b))
            + self.criterion(predictions_b, self._momentum(view_a))
        )

    def _multi_crop(self, views: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """SwAV and DINO as lightly's examples run them: global crops first, then the small."""
        if self.name == "swav":
            self.prototypes.normalize()
            outputs = [
                self.prototypes(F.normalize(self.head(self.backbone(view)), dim=1), self.step)
                for view in views
            ]
            return self.criterion(outputs[:2], outputs[2:])
        teacher = [self._momentum(view) for view in views[:2]]
        student = [self.head(self.backbone(view)) for view in views]
        return self.criterion(teacher, student, epoch=0)

    def on_step_end(self, step: int, total_steps: int) -> None:
        from lightly.models.utils import update_momentum
        from lightly.utils.scheduler import cosine_schedule

        self.step = step + 1
        if self.name == "moco":
            momentum = self.momentum
        elif self.name in ("byol", "dino"):
            momentum = cosine_schedule(step, total_steps, self.momentum, 1.0)
        else:
            return
        update_momentum(self.backbone, self.backbone_momentum, momentum)
        update_momentum(self.head, self.head_momentum, momentum)


class _LightlyInSelfsup(torch.nn.Module):
    """Diagnostic: lightly's model and loss driven by selfsup's loop (a list of views in)."""

    def __init__(self, config, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.encoder = _LightlyModel(config, encoder), encoder

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        return self.model(*views)

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.model.on_step_end(step, total_steps)


class _SelfsupInLightly(torch.nn.Module):
    """Diagnostic: selfsup's method driven by lightly's loop (two view tensors in)."""

    def __init__(self, config, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.method = build_method(encoder, config)

    def forward(self, *views: torch.Tensor) -> torch.Tensor:
        return self.method(list(views))

    def on_step_end(self, step: int, total_steps: int) -> None:
        self.method.on_step_end(step, total_steps)


def lightly_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    views: list[torch.Tensor],
    step: int,
    total: int,
    device: torch.device,
) -> None:
    """One step of lightly's example loop, bf16 autocast on CUDA (its "bf16-mixed")."""
    views = [view.to(device, non_blocking=True) for view in views]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss = model(*views)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.on_step_end(step, total)


def _train_lightly(
    config, images: torch.Tensor, mean, std, workers: int, selfsup_model: bool = False
) -> torch.nn.Module:
    """lightly's transform, loader, LARS and loop; with `selfsup_model`, selfsup's method."""
    from lightly.utils.lars import LARS
    from PIL import Image

    optim, train_config = config.optim, config.train
    transform = _lightly_transform(config, images.shape[-1], mean, std)
    pixels = images[:, 0].numpy()

    class Views(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(pixels)

        def __getitem__(self, index: int):
            return transform(Image.fromarray(pixels[index], mode="L"))

    device = resolve_device(train_config.device)
    generator = torch.Generator().manual_seed(train_config.seed)
    loader = torch.utils.data.DataLoader(
        Views(),
        batch_size=train_config.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=generator,
        pin_memory=device.type == "cuda",
    )
    encoder = _encoder(config, train_config.seed)
    model = (_SelfsupInLightly if selfsup_model else _LightlyModel)(config, encoder).to(device)
    lr = scaled_learning_rate(optim.lr, train_config.batch_size, optim.lr_scaling)
    groups = param_groups(model, optim.weight_decay)
    if optim.optimizer == "lars":
        optimizer = LARS(groups, lr=lr, momentum=optim.momentum)
    else:  # the recipes' sgd (SimSiam's)
        optimizer = torch.optim.SGD(groups, lr=lr, momentum=optim.momentum)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * train_config.epochs
    warmup = round(optim.warmup_epochs * steps_per_epoch)
    step = 0
    for _ in range(train_config.epochs):
        model.train()
        for views in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr * warmup_cosine(step, total, warmup, 1.0)
            lightly_step(model, optimizer, views, step, total, device)
            step += 1
    return encoder


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024  # ru_maxrss is KiB on Linux


def run_one(args: argparse.Namespace) -> dict:
    """Train one library, then score its encoder; prints one JSON line."""
    config = _config(args)
    device = resolve_device(args.device)
    train_set = load_split(config, "train")
    test_set = load_split(config, "test")
    mean, std = dataset_stats(train_set.images)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if args.library == "selfsup":
        encoder = _train_selfsup(config, train_set.images, mean, std)
    elif args.library == "lightly":
        encoder = _train_lightly(config, train_set.images, mean, std, args.workers)
    elif args.library == "lightly-on-selfsup-views":
        encoder = _train_selfsup(config, train_set.images, mean, std, lightly_model=True)
    elif args.library == "selfsup-on-lightly-views":
        encoder = _train_lightly(
            config, train_set.images, mean, std, args.workers, selfsup_model=True
        )
    elif args.library == "random":  # no training: the method's architecture (CPC: patch grid)
        encoder = build_method(_encoder(config, args.seed), config).encoder
    else:  # the raw pixels: no encoder at all
        encoder = None
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    batch = config.train.batch_size
    images_seen = (len(train_set) // batch) * batch * config.train.epochs
    peak = _peak_memory_mib(device)
    preprocess = make_preprocess(mean, std)
    if config.data.train_subset:  # the kNN bank is always the whole labelled training split
        whole = dataclasses.replace(config.data, train_subset=None)
        train_set = load_split(dataclasses.replace(config, data=whole), "train")
    if encoder is None:
        train_features, test_features = (pixel_features(s.images) for s in (train_set, test_set))
    else:
        train_features = extract_features(encoder, train_set.images, preprocess, device=device)
        test_features = extract_features(encoder, test_set.images, preprocess, device=device)
    knn = knn_accuracy(train_features, train_set.labels, test_features, test_set.labels, 10)
    return {
        "method": args.method,
        "library": args.library,
        "train_seconds": round(seconds, 1),
        "images_per_second": (
            round(images_seen / seconds, 1) if args.library not in ("random", "pixels") else None
        ),
        "peak_memory_mib": round(peak),
        "knn_top1": round(knn["top1"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--base-width", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--train-subset", type=int, default=None, help="seeded subset, quick runs")
    parser.add_argument("--methods", nargs="+", default=[*LIGHTLY_METHODS, "drlim", "cpc"])
    parser.add_argument(
        "--libraries",
        nargs="+",
        default=["pixels", "random", "lightly", "selfsup"],
        choices=LIBRARIES,
        help="the two *-views rows swap the model and loss between the libraries' pipelines, "
        "to tell augmentation and loop apart from model and loss",
    )
    parser.add_argument("--library", help=argparse.SUPPRESS)  # set in the child process
    parser.add_argument("--method", default="simclr", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="also write the rows as JSON lines here")
    args = parser.parse_args()
    if args.library:
        print(json.dumps(run_one(args)), flush=True)
        return
    runs = []
    if "pixels" in args.libraries:
        runs.append(("simclr", "pixels"))
    if "random" in args.libraries:  # one floor per architecture: the ResNet, CPC's patch grid
        if any(method != "cpc" for method in args.methods):
            runs.append(("simclr", "random"))
        if "cpc" in args.methods:
            runs.append(("cpc", "random"))
    floors = ("random", "pixels")
    for method in args.methods:
        for library in args.libraries:
            if library == "selfsup" or (library not in floors and method in LIGHTLY_METHODS):
                runs.append((method, library))
    rows = []
    for method, library in runs:
        child = [
            sys.executable, __file__, *sys.argv[1:], "--library", library, "--method", method
        ]  # fmt: skip
        output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        rows.append(json.loads(output.strip().splitlines()[-1]))
        print(f"finished {method} {library}: {rows[-1]}", file=sys.stderr, flush=True)
        if args.out:
            with open(args.out, "a") as log:
                log.write(json.dumps(rows[-1]) + "\n")
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"Fashion-MNIST {args.train_subset or '60k'} training images (CPC: its recipe's subset "
        f"and batch), kNN bank: the 60k labelled training images; CIFAR-stem ResNet-18 base "
        f"width {args.base_width}, batch {args.batch_size}, {args.epochs} epochs, device "
        f"{device} ({name}, {torch.get_num_threads()} threads), torch {torch.__version__}"
    )
    print("| method | library | img/s | train s | peak MiB | kNN top-1 |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        rate = "—" if row["images_per_second"] is None else f"{row['images_per_second']:.0f}"
        method = row["method"]
        if row["library"] == "random":
            method = "(random init, patch grid)" if method == "cpc" else "(random init)"
        elif row["library"] == "pixels":
            method = "(raw pixels)"
        print(
            f"| {method} | {row['library']} | {rate} | {row['train_seconds']} | "
            f"{row['peak_memory_mib']} | {row['knn_top1']:.2f} |"
        )


if __name__ == "__main__":
    main()
