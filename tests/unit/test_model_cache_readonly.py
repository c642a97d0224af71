"""Pods mount the models volume read-only: finding a model there must not need to write the hash cache."""

from __future__ import annotations

import hashlib

from warriorflow.models.locate import cached_sha256


def test_a_cache_dir_that_cannot_be_written_is_not_an_error(tmp_path, monkeypatch):
    import warriorflow.models.locate as locate

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"y" * 100)

    def read_only(path, text):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(locate, "_atomic_write_text", read_only)
    assert cached_sha256(model, tmp_path / "cache") == hashlib.sha256(model.read_bytes()).hexdigest()
    assert not (tmp_path / "cache" / "sha256-cache.json").exists()
