"""`warriorflow serve-gguf`: an expert's GGUF over llama.cpp's OpenAI-compatible HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from warriorflow.cli.context import config_of


@click.command("serve-gguf")
@click.option("--expert", "name", required=True, help="Expert whose GGUF to serve.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--ready-file", type=click.Path(path_type=Path), help="Write the address here once listening.")
@click.pass_context
def serve_gguf_cmd(ctx: click.Context, name: str, host: str, port: int, ready_file: Path | None) -> None:
    """Serve an expert's GGUF over llama.cpp's OpenAI-compatible HTTP API."""
    from warriorflow.inference.server import serve_gguf
    from warriorflow.models.locate import resolve_model

    config = config_of(ctx)
    expert = config.registry.get(name)
    resolved = resolve_model(expert.name, expert.model, config.model_cache)
    ll = config.settings.inference.llamacpp
    serve_gguf(resolved.path, host=host, port=port, threads=ll.threads, n_parallel=ll.n_parallel,
               ctx_per_sequence=ll.ctx_per_sequence, alias=expert.name, ready_file=ready_file)
