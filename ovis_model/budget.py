"""LLM token accounting of one prompt: :class:`TokenBudget`, and the per-frame time tag whose
tokens it counts."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenBudget", "format_time_tag"]


def format_time_tag(seconds: float) -> str:
    """The text tag put before each frame: ``<12.5 seconds>``."""
    return f"<{seconds:.1f} seconds>"


@dataclass(frozen=True)
class TokenBudget:
    """LLM token accounting of one prompt.

    Attributes:
        visual_tokens: visual atoms (``-300``), i.e. patches / hidden_stride^2 - the number
            vidsel's frame / codec budgets are stated in.
        indicator_tokens: begin / end markers.
        time_tag_tokens: text tokens spent on ``<t seconds>`` tags.
        text_tokens: every other text token (chat template + question).
        tokens_per_frame: visual tokens of one full frame at the processed resolution (0 if no
            video); ``frame_equivalents`` = visual_tokens / tokens_per_frame.
        source_frames: distinct source frames that contributed patches.
    """

    visual_tokens: int
    indicator_tokens: int
    time_tag_tokens: int
    text_tokens: int
    tokens_per_frame: int = 0
    source_frames: int = 0

    @property
    def total(self) -> int:
        return self.visual_tokens + self.indicator_tokens + self.time_tag_tokens + self.text_tokens

    @property
    def frame_equivalents(self) -> float:
        return self.visual_tokens / self.tokens_per_frame if self.tokens_per_frame else 0.0
