import pytest

from matchflow.config import ConfigError, PipelineConfig, load_config


def test_defaults_follow_soccernet_sampling():
    cfg = PipelineConfig()
    assert cfg.fps == 2.0
    assert cfg.sport == "soccer"
    assert cfg.stages == ["frames", "calibration", "detection", "localization", "graph", "topview", "features", "reid",
                          "tracking", "teams"]
    assert cfg.chunk_frames % cfg.batch_frames == 0


def test_yaml_file_and_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("fps: 1.0\nchunk_frames: 32\nbatch_frames: 8\n")
    cfg = load_config(f, fps=5.0, workers=None)
    assert cfg.fps == 5.0  # the command line wins
    assert cfg.chunk_frames == 32 and cfg.batch_frames == 8


def test_unknown_field_is_named_with_the_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("fps: 2\nchunk_frame: 10\n")
    with pytest.raises(ConfigError) as exc:
        load_config(f)
    assert "chunk_frame" in str(exc.value) and str(f) in str(exc.value)


def test_wrong_value_is_named(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("fps: -1\n")
    with pytest.raises(ConfigError, match="fps"):
        load_config(f)
    with pytest.raises(ConfigError, match="multiple of batch_frames"):
        load_config(None, chunk_frames=10, batch_frames=4)
    with pytest.raises(ConfigError, match="scheduler"):
        load_config(None, scheduler="localhost:8786")


def test_not_a_mapping_and_bad_yaml(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(f)
    g = tmp_path / "broken.yaml"
    g.write_text("fps: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(g)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_fingerprint_covers_output_fields_only():
    base = PipelineConfig()
    assert base.fingerprint() == PipelineConfig(workers=7, scheduler="tcp://1.2.3.4:8786").fingerprint()
    assert base.fingerprint() != PipelineConfig(fps=1.0).fingerprint()
    assert base.fingerprint() != PipelineConfig(chunk_frames=64).fingerprint()
    assert "storage_options" not in PipelineConfig(storage_options={"anon": True}).public_dict()


def test_sport_presets_are_the_default_stage_lists():
    from matchflow.config import PRESETS
    from matchflow.pipeline import PipelineError, build_pipeline

    for sport, stages in PRESETS.items():
        cfg = load_config(None, sport=sport)
        assert cfg.stages == list(stages)
        build_pipeline(cfg)  # every preset is a valid chain
    assert load_config(None, sport="basketball", stages=["frames"]).stages == ["frames"]  # stages override
    # the sport only chooses the stages: the same stages give the same fingerprint
    assert (PipelineConfig(sport="basketball", stages=["frames", "detection"]).fingerprint()
            == PipelineConfig(stages=["frames", "detection"]).fingerprint())
    with pytest.raises(ConfigError, match="sport"):
        load_config(None, sport="curling")
    # an incomplete list still names what is missing
    with pytest.raises(PipelineError, match="reads 'calibration.homography', which no earlier stage writes"):
        build_pipeline(load_config(None, stages=["frames", "detection", "localization"]))
