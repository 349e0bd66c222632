"""The tail shared by every figure writer: lay out, save, close (lowest layer: any layer's plot module may use it).

Matplotlib is imported only by the callers (pyplot only when ``close`` asks for it), so importing this module stays
light.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["save_figure"]


def save_figure(fig, path, *, dpi: float, bbox_inches=None, tight_layout: bool = True, close: bool = False,
                atomic: bool = True, user_path: bool = False) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix, parent folders created) and return ``Path(path)``.

    ``tight_layout``: call ``fig.tight_layout()`` first (off for figures saved with ``bbox_inches="tight"`` or laid
    out by the caller).  ``atomic`` (default): rendered in memory, then temp file + os.replace
    (:func:`wannmag._atomic.atomic_savefig`), never a truncated figure; a suffix-less path is written as PNG under
    that name.  ``atomic=False``: matplotlib writes the file itself (a suffix-less path gets ``.png`` appended).
    ``close``: ``pyplot.close(fig)`` afterwards, also when saving failed (for figures made with pyplot).
    ``user_path``: the path came from the user, so a directory or an unwritable target is one
    :class:`~wannmag.errors.WannmagError` line instead of an OSError.
    """
    path = Path(path)
    kwargs = {"dpi": dpi} if bbox_inches is None else {"dpi": dpi, "bbox_inches": bbox_inches}
    try:
        if tight_layout:
            fig.tight_layout()
        if user_path and path.is_dir():
            from .errors import WannmagError

            raise WannmagError(f"{path}: is a directory; give a PNG file name")
        try:
            if atomic:
                from ._atomic import atomic_savefig

                atomic_savefig(fig, path, **kwargs)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(path, **kwargs)
        except OSError as exc:
            if not user_path:
                raise
            from .errors import WannmagError

            raise WannmagError(f"{path}: cannot write the figure ({exc.strerror or type(exc).__name__})") from None
    finally:
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
    return path
