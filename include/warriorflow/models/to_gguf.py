"""Write a fine-tuned Hugging Face model back to GGUF, so llama.cpp runs it on CPUs (the embedded default:
trained models are evaluated, and the champion battles, through the same engine as the experts).

The run was trained from an expert's GGUF (dequantized by :mod:`warriorflow.models.dequantize`), so that GGUF
is the template: its metadata (architecture, hyperparameters, tokenizer, chat template) is copied as is and
each of its tensors gets the trained weights, found through gguf's own name map (the one llama.cpp's
``convert_hf_to_gguf.py`` uses), with the q/k head permutation llama-family GGUFs carry. 2-D weights are
written Q8_0, everything else F32. The base model is converted the same way, so a baseline and a candidate
are compared through the same quantization.

A conversion is cached next to its output with the sha256 of the inputs; a partial file never replaces a
good one (temp file, then rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from warriorflow.errors import ModelError
from warriorflow.store.hashing import sha256_file

FORMAT = 1
LLAMA_PERMUTED = {"llama"}  # convert_hf_to_gguf permutes q/k for these; transformers un-permutes on load


def _permute(w, n_head: int):
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _inputs_digest(hf_dir: Path, template: Path, qtype: str) -> str:
    h = hashlib.sha256(json.dumps([FORMAT, qtype, sha256_file(template)]).encode())
    for f in sorted(hf_dir.glob("*.safetensors")):
        h.update(f.name.encode() + sha256_file(f).encode())
    return h.hexdigest()


def hf_to_gguf(hf_dir: str | os.PathLike, template_gguf: str | os.PathLike, out_path: str | os.PathLike,
               qtype: str = "Q8_0") -> Path:
    """Convert the safetensors model in ``hf_dir`` to ``out_path`` with ``template_gguf``'s metadata; return it."""
    import gguf
    import numpy as np
    from safetensors.numpy import load_file

    hf_dir, template, out = Path(hf_dir), Path(template_gguf), Path(out_path)
    shards = sorted(hf_dir.glob("*.safetensors"))
    if not shards:
        raise ModelError(f"model directory {hf_dir}", "has no *.safetensors", "point at a save_pretrained directory")
    digest = _inputs_digest(hf_dir, template, qtype)
    marker = out.with_name(out.name + ".json")
    if out.is_file() and marker.is_file():
        try:
            if json.loads(marker.read_text()).get("inputs_sha256") == digest:
                return out
        except ValueError:
            pass
    reader = gguf.GGUFReader(str(template))
    arch = reader.fields["general.architecture"].contents()
    blocks = int(reader.fields[f"{arch}.block_count"].contents())
    n_head = int(reader.fields[f"{arch}.attention.head_count"].contents())
    kv = reader.fields.get(f"{arch}.attention.head_count_kv")
    n_kv = int(kv.contents()) if kv is not None else n_head
    arch_enum = {v: k for k, v in gguf.MODEL_ARCH_NAMES.items()}.get(arch)
    if arch_enum is None:
        raise ModelError(str(template), f"architecture {arch!r} is unknown to gguf {gguf.__version__}",
                         "evaluate with evaluation.backend: transformers")
    names = gguf.get_tensor_name_map(arch_enum, blocks)
    weights: dict[str, np.ndarray] = {}
    for shard in shards:
        for hf_name, w in load_file(str(shard)).items():
            g = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if g is None:
                raise ModelError(f"tensor {hf_name} of {hf_dir}", f"has no GGUF name for architecture {arch}",
                                 "evaluate with evaluation.backend: transformers")
            w = w.astype(np.float32)
            if arch in LLAMA_PERMUTED and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
                w = _permute(w, n_head if "q_proj" in hf_name else n_kv)
            weights[g] = w
    if "output.weight" not in weights and "token_embd.weight" in weights:  # tied embeddings
        weights["output.weight"] = weights["token_embd.weight"]
    wanted = [t.name for t in reader.tensors]
    missing = [n for n in wanted if n not in weights]
    if missing:
        raise ModelError(f"model directory {hf_dir}", f"lacks tensors the template has: {missing[:5]}",
                         f"was it trained from {template.name}? Evaluate with evaluation.backend: transformers")
    q = getattr(gguf.GGMLQuantizationType, qtype)
    block = gguf.GGML_QUANT_SIZES[q][0]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        writer = gguf.GGUFWriter(tmp, arch)
        for field in reader.fields.values():
            if field.name == "general.architecture" or field.name.startswith("GGUF."):
                continue
            value = field.contents()
            if field.name == "general.file_type":
                value = int(gguf.LlamaFileType.MOSTLY_Q8_0 if qtype == "Q8_0" else gguf.LlamaFileType.ALL_F32)
            sub = field.types[-1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(field.name, value, field.types[0], sub_type=sub)
        for name in wanted:
            w = weights[name]
            if w.ndim == 2 and w.shape[-1] % block == 0 and qtype != "F32":
                writer.add_tensor(name, gguf.quants.quantize(w, q), raw_dtype=q)
            else:
                writer.add_tensor(name, w)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the model cache is shared with pods of another uid
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    marker.write_text(json.dumps({"inputs_sha256": digest, "template": template.name, "qtype": qtype}))
    return out


def gguf_template(config) -> Path:
    """The GGUF a trained model is converted with: ``training.base_model``'s, which must be an expert with GGUF
    weights (the run was trained from its dequantized copy)."""
    from warriorflow.errors import ConfigError
    from warriorflow.models.locate import resolve_model

    name = config.settings.training.base_model
    if name not in config.registry.names():
        raise ConfigError("llama.cpp for a trained model", f"needs training.base_model to be a GGUF expert, not "
                          f"{name!r}", "use evaluation.backend / flywheel.champion_backend vllm or transformers")
    expert = config.registry.get(name)
    if expert.model.endpoint is not None or expert.model.hf_dir is not None or expert.model.published is not None:
        raise ConfigError(f"training.base_model {name!r}", "has no GGUF weights to convert with",
                          "use evaluation.backend / flywheel.champion_backend vllm or transformers")
    path = resolve_model(expert.name, expert.model, config.model_cache).path
    if path is None or not path.is_file():
        raise ConfigError(f"training.base_model {name!r}", "has no GGUF file", "use vllm or transformers")
    return path


def converted(config, name: str, hf_dir: str | os.PathLike) -> Path:
    """``hf_dir`` as a Q8_0 GGUF in the model cache (converted once per content)."""
    import re

    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "model"
    return hf_to_gguf(hf_dir, gguf_template(config), config.model_cache / "gguf" / f"{safe}.q8_0.gguf")
