"""Where vaecam writes: output folders it owns, a lock per folder, and writes that fail clearly.

* :mod:`vaecam.outputs.folder`: :class:`OutputFolder` claims a folder for one command. A marker
  file names the command and lists every file it wrote, so ``--overwrite`` replaces only vaecam's
  own files, and a folder that holds or sits inside an input (data, checkpoint) is refused before
  anything is touched.
* :mod:`vaecam.outputs.lock`: :class:`FolderLock`, so two commands never write into one folder.
* :mod:`vaecam.outputs.atomic`: atomic file writes whose failures (disk full, no permission) are
  one-line errors naming the file.
"""

from vaecam.outputs.atomic import (
    OutputError,
    atomic_share,
    atomic_write,
    atomic_write_text,
    writing,
)
from vaecam.outputs.folder import MARKER, OutputFolder, adopt, is_child_rank
from vaecam.outputs.lock import FolderLock

__all__ = [
    "MARKER",
    "FolderLock",
    "OutputError",
    "OutputFolder",
    "adopt",
    "atomic_share",
    "atomic_write",
    "atomic_write_text",
    "is_child_rank",
    "writing",
]
