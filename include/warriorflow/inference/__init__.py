"""Inference: one batched protocol (complete / chat / constrained choice) over several backends."""

from warriorflow.inference.base import (
    Backend,
    ChatMessage,
    Conversation,
    Generation,
    Sampling,
)

__all__ = ["Backend", "ChatMessage", "Conversation", "Generation", "Sampling"]
