"""The supervised reference: cross-entropy of every view against its image's label, with the
labels that `LabelledViews` looks up by dataset index."""

import torch
from torch.nn import functional as F

from selfsup.augment import LabelledViews
from selfsup.methods.supervised import Supervised
from selfsup.models import build_encoder


def test_the_loss_is_the_mean_cross_entropy_over_every_view() -> None:
    torch.manual_seed(0)
    learner = Supervised(build_encoder("resnet18", in_channels=1, base_width=4), 3).eval()
    views = [torch.randn(4, 1, 8, 8), torch.randn(4, 1, 8, 8)]
    labels = torch.tensor([0, 2, 1, 2])
    logits = [learner.classifier(learner.encoder(view)) for view in views]
    expected = (F.cross_entropy(logits[0], labels) + F.cross_entropy(logits[1], labels)) / 2
    torch.testing.assert_close(learner([*views, labels]), expected)


def test_labelled_views_append_each_images_label_by_its_index() -> None:
    labels = torch.tensor([5, 6, 7, 8, 9])

    def views(batch, indices, generator=None):
        return [batch.float(), batch.float() + 1]

    batch = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    made = LabelledViews(views, labels)(batch, torch.tensor([4, 0, 2]))
    assert len(made) == 3 and made[-1].tolist() == [9, 5, 7] and made[-1].dtype == torch.long
    torch.testing.assert_close(made[1], torch.ones(3, 1, 2, 2))
