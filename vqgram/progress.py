"""Progress bars (tqdm) behind one process-wide switch, like huggingface_hub's: the CLI's -q turns them off."""
from __future__ import annotations

from typing import Iterable

from tqdm import tqdm

_enabled = True


def set_progress_bars(enabled: bool) -> None:
    """Show (True) or hide (False) every vqgram progress bar from now on."""
    global _enabled
    _enabled = bool(enabled)


def progress_bar(iterable: Iterable | None = None, *, show: bool = True, **kwargs) -> tqdm:
    """A tqdm bar, hidden when this call says so (`show=False`) or the process switch is off."""
    return tqdm(iterable, disable=not (show and _enabled), **kwargs)
