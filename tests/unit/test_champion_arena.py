"""The champion joins the arena (flywheel.champion_joins_arena): it is an answering expert whose weights are the
object store's champion alias; the planner leaves it out until a model is promoted; its weights are downloaded
and checked when a job loads it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from warriorflow.config import BackendKind, load_config
from warriorflow.errors import ConfigError, ModelError, StoreError
from warriorflow.models.published import fetch_published_model
from warriorflow.store import champion as ch
from warriorflow.store.objects import join_key, open_objects, publish
from warriorflow.store.rating_store import RatingStore
from warriorflow.training.sft import MODEL_KIND


def _settings(tmp_path: Path, **flywheel) -> Path:
    base = yaml.safe_load(Path(load_config().settings_file).read_text())
    base["experts_file"] = str(load_config().experts_file)
    base["flywheel"] = {"min_new_gold": 8, **flywheel}
    p = tmp_path / "settings.yaml"
    p.write_text(yaml.safe_dump(base))
    return p


def _publish(objects, run_id: str, files: dict[str, bytes]) -> None:
    publish(objects, join_key("models", run_id), files, {"kind": MODEL_KIND, "training_run_id": run_id})


def test_the_champion_is_an_answering_expert_of_the_registry(tmp_path):
    cfg = load_config(_settings(tmp_path, champion_joins_arena=True, champion_backend="llamacpp"))
    e = cfg.registry.get("champion")
    assert [r.value for r in e.roles] == ["answer"] and e.backend is BackendKind.llamacpp
    assert e.model.published == "models/champion" and e.weights == "champion:champion"
    assert "champion" not in load_config(_settings(tmp_path)).registry.names()  # off: not registered
    with pytest.raises(ConfigError, match="is an expert of the registry already"):
        load_config(_settings(tmp_path, champion_joins_arena=True, champion_name="smollm2-135m-instruct"))


def test_the_planner_leaves_the_champion_out_until_a_promotion(tmp_path):
    from warriorflow.stages.plan import arena_registry, register_experts

    cfg = load_config(_settings(tmp_path, champion_joins_arena=True))
    objects = open_objects(cfg)
    cfg.home.mkdir(parents=True, exist_ok=True)
    assert "champion" not in arena_registry(cfg, objects).names()
    with RatingStore(cfg.duckdb_path) as store:
        register_experts(cfg, store, arena_registry(cfg, objects))
        assert "champion" not in {r["name"] for r in store.query("SELECT name FROM experts")}
        _publish(objects, "sft-0123456789abcdef", {"config.json": b"{}"})
        ch.publish_champion(objects, "sft-0123456789abcdef", {"decision_id": "d1", "p_value": 0.01})
        assert "champion" in arena_registry(cfg, objects).names()
        register_experts(cfg, store, arena_registry(cfg, objects))
        # it joins now: its first_seen_at is later than every instruction planned before (the newcomer rule)
        assert "champion" in {r["name"] for r in store.query("SELECT name FROM experts")}


def test_a_published_model_is_downloaded_checked_and_cached(tmp_path):
    cfg = load_config(_settings(tmp_path))
    objects = open_objects(cfg)
    with pytest.raises(ModelError, match="no model has been promoted yet"):
        fetch_published_model(objects, "models/champion", tmp_path / "cache")
    _publish(objects, "sft-00000000000000aa", {"config.json": b'{"a": 1}', "model.safetensors": b"weights-1"})
    ch.publish_champion(objects, "sft-00000000000000aa", {"decision_id": "d1", "p_value": 0.01})
    path = fetch_published_model(objects, "models/champion", tmp_path / "cache")
    assert (path / "model.safetensors").read_bytes() == b"weights-1" and (path / "config.json").is_file()
    assert fetch_published_model(objects, "models/champion", tmp_path / "cache") == path  # cached
    objects.put_bytes("models/sft-00000000000000aa/model.safetensors", b"forged!!!")  # same size, other bytes
    with pytest.raises(StoreError, match="fails its checksum"):
        fetch_published_model(objects, "models/sft-00000000000000aa", tmp_path / "cache2")
    assert not (tmp_path / "cache2" / "published" / "models--sft-00000000000000aa").exists()  # nothing half-there
    with pytest.raises(ModelError, match="has no manifest"):
        fetch_published_model(objects, "models/sft-ffffffffffffffff", tmp_path / "cache")


def test_the_report_shows_the_champions_elo_per_rating_version(tmp_path):
    from datetime import datetime

    from warriorflow.report import data

    cfg = load_config(_settings(tmp_path, champion_joins_arena=True))
    cfg.home.mkdir(parents=True, exist_ok=True)
    with RatingStore(cfg.duckdb_path) as store:
        store.upsert("model_promotions", [{
            "decision_id": "d1", "candidate": "sft-00000000000000aa", "previous": "base:x", "promoted": True,
            "deltas": {}, "mean_delta": 0.5, "rule": {}, "reasons": "[]", "harness_version": "h",
            "decided_at": datetime(2026, 12, 1, 10)}], key=["decision_id"])
        rows = []
        for version, at, elo in (("v1", datetime(2026, 12, 1, 9), None), ("v2", datetime(2026, 12, 1, 11), 1012.5),
                                 ("v3", datetime(2026, 12, 1, 12), 1020.0)):
            rows.append({"rating_version": version, "method": "elo", "expert": "qwen2.5-coder-0.5b-instruct",
                         "rating": 1000.0, "n_battles": 3, "computed_at": at})
            if elo is not None:
                rows += [{"rating_version": version, "method": m, "expert": "champion", "rating": r, "n_battles": 2,
                          "computed_at": at} for m, r in (("elo", elo), ("bt", elo + 1))]
        store.upsert("rating_history", rows, key=["rating_version", "method", "expert"])
        series = data.champion_in_arena(store, "champion")
        assert data.champion_in_arena(store, None) == []
    assert [(r["rating_version"], r["elo"], r["bt"], r["champion_run"]) for r in series] == [
        ("v2", 1012.5, 1013.5, "sft-00000000000000aa"), ("v3", 1020.0, 1021.0, "sft-00000000000000aa")]
