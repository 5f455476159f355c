"""SimSiam: its loss on predictions and projections of each view, a projector ending in an
affine-free batch norm, a bottleneck predictor back to the projection width."""

import torch

from selfsup.losses.simsiam import simsiam_loss
from selfsup.methods import SimSiam
from selfsup.models import build_encoder


def test_simsiam_is_its_loss_and_its_networks_have_the_papers_shape() -> None:
    torch.manual_seed(0)
    method = SimSiam(build_encoder("resnet18", base_width=4), [16, 16, 8], predictor_hidden=2)
    last = method.projection_head.layers[-1]
    assert isinstance(last[-1], torch.nn.BatchNorm1d) and not last[-1].affine
    assert method.predictor.widths == [2, 8]
    views = [torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)]
    method.eval()
    projections = [method.projection_head(method.encoder(view)) for view in views]
    predictions = [method.predictor(projection) for projection in projections]
    torch.testing.assert_close(method(views), simsiam_loss(*predictions, *projections))
