"""VICReg is `vicreg_loss` on each view's own pass through the encoder and expander."""

import pytest
import torch

from selfsup.losses.vicreg import vicreg_loss
from selfsup.methods import VICReg
from selfsup.models import build_encoder


def test_vicreg_is_its_loss_on_separately_expanded_views() -> None:
    torch.manual_seed(0)
    method = VICReg(build_encoder("resnet18", base_width=4), [16, 16, 8], 10.0, 5.0, 2.0)
    views = [torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)]
    method.eval()
    embeddings = [method.projection_head(method.encoder(view)) for view in views]
    torch.testing.assert_close(method(views), vicreg_loss(*embeddings, 10.0, 5.0, 2.0))
    with pytest.raises(ValueError, match="2 views"):
        method(views[:1])
