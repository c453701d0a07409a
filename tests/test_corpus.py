import pytest

from matchflow.storage.corpus import game_id, list_games


def _touch(p):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")


def test_soccernet_layout_picks_highest_resolution(tmp_path):
    g = tmp_path / "england_epl" / "2014-2015" / "2015-02-21 - 18-00 Chelsea 1 - 1 Burnley"
    for name in ("1_720p.mkv", "2_720p.mkv", "1_224p.mkv", "2_224p.mkv", "1_gt_frames.parquet", "Labels-v2.json"):
        _touch(g / name)
    games = list_games(str(tmp_path))
    assert len(games) == 1
    game = games[0]
    assert game.key == "england_epl/2014-2015/2015-02-21 - 18-00 Chelsea 1 - 1 Burnley"
    assert sorted(game.halves) == [1, 2]
    assert game.halves[1].endswith("1_720p.mkv") and game.halves[2].endswith("2_720p.mkv")
    low = list_games(str(tmp_path), resolution="lowest")[0]
    assert low.halves[1].endswith("1_224p.mkv")
    exact = list_games(str(tmp_path), resolution=224)[0]
    assert exact.halves[2].endswith("2_224p.mkv")
    missing = list_games(str(tmp_path), resolution=1080)[0]
    assert missing.error and "1080" in missing.error


def test_one_half_game_and_ambiguous_folder(tmp_path):
    _touch(tmp_path / "clipA" / "match.mp4")
    _touch(tmp_path / "clipB" / "a.mp4")
    _touch(tmp_path / "clipB" / "b.mp4")
    _touch(tmp_path / ".hidden" / "1_720p.mkv")
    games = {g.key: g for g in list_games(str(tmp_path))}
    assert set(games) == {"clipA", "clipB"}
    assert list(games["clipA"].halves) == [1] and games["clipA"].error is None
    assert "several videos without a half prefix" in games["clipB"].error


def test_errors_for_missing_or_empty_corpus(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_games(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .mkv or .mp4"):
        list_games(str(tmp_path / "empty"))


@pytest.mark.parametrize("key", ["..", "../../etc", "a/../../b", "é ü ñ 中文", "x" * 500, "  ", "game=1/part"])
def test_game_id_is_safe_and_stable(key):
    gid = game_id(key)
    assert gid == game_id(key)
    assert "/" not in gid and not gid.startswith(".") and gid not in ("", ".", "..")
    assert all(c.isalnum() or c in "._-" for c in gid) and gid.isascii()
    assert len(gid) <= 73


def test_game_ids_differ_for_similar_keys():
    assert game_id("a b") != game_id("a_b")
