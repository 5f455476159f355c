"""NNCLR: positives are the nearest support-set entries, the support set is a FIFO of the first
view's unit projections written in training only."""

import torch
import torch.nn.functional as F

from selfsup.losses.nnclr import nnclr_loss
from selfsup.methods import NNCLR
from selfsup.models import build_encoder


def test_nnclr_contrasts_nearest_support_entries_and_queues_the_first_view() -> None:
    torch.manual_seed(0)
    method = NNCLR(build_encoder("resnet18", base_width=4), [16, 8], 16, queue_size=10)
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]
    method.eval()
    support = method.support.keys.clone()
    projections = [method.projection_head(method.encoder(view)) for view in views]
    predictions = [method.predictor(projection) for projection in projections]
    nearest = [support[(F.normalize(z, dim=1) @ support.T).argmax(1)] for z in projections]
    torch.testing.assert_close(method(views), nnclr_loss(*nearest, *predictions, temperature=0.1))
    assert torch.equal(method.support.keys, support)  # eval: the support set is left alone
    method.train()
    method(views)
    written = method.support.keys[:4]
    assert int(method.support.pointer) == 4
    torch.testing.assert_close(written.norm(dim=1), torch.ones(4))
    assert torch.equal(method.support.keys[4:], support[4:])
