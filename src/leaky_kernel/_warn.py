"""Warnings attributed to the line of the user's code that led to them."""
import os
import sys
import warnings

_PACKAGE_DIRECTORY = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message, category):
    """warnings.warn, attributed to the first frame outside this package.

    A fixed stacklevel would name a file of the package whenever the warning
    comes from a deeper call (set_tuning, the import): the frames are counted
    here instead, skipping importlib's as warnings.warn does."""
    frame, stacklevel = sys._getframe(0), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRECTORY):
        frame, stacklevel = _next_counted(frame.f_back), stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)


def _next_counted(frame):
    """The first frame from `frame` on that warnings.warn counts in a stacklevel."""
    while frame is not None and "importlib" in frame.f_code.co_filename and (
        "_bootstrap" in frame.f_code.co_filename
    ):
        frame = frame.f_back
    return frame
