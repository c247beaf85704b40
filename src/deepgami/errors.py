"""User-facing errors and the output policy of every command.

Two kinds of error end a command with one line on stderr (no traceback unless ``--debug``):
:class:`InputError` (bad input, exit code 2) and :class:`EnvError` (the machine refused: no
permission, read-only file system, no space, not a directory, ...; exit code 3). Outputs are
written through :func:`atomic_path`, so a failure never leaves a partial file, and claimed with
:func:`claim_output`, so an output replaces only what deepgami wrote there before.
"""

from __future__ import annotations

import contextvars
import errno
import fnmatch
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

MARKER = ".deepgami"  # inside every output directory: its kind and the files deepgami wrote


class InputError(Exception):
    """Bad user input.

    The CLI prints `error: <path>: <message>` and exits with code 2.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file or directory at fault, shown before the message (None: no path).
    message : str
        What is wrong; newlines are replaced by spaces to keep the error on one line.
    """

    exit_code = 2

    def __init__(self, path: str | os.PathLike | None, message: str) -> None:
        self.path = None if path is None else str(path)
        # One line, always: a stray newline from user content must not split the message.
        self.message = " ".join(str(message).split("\n"))
        super().__init__(f"{self.path}: {self.message}" if self.path else self.message)


class EnvError(InputError, OSError):
    """The environment refused (permission, read-only, no space, ...): exit code 3.

    An InputError, so code that adds a file name to an InputError keeps working (the CLI tells them
    apart by `exit_code`), and an OSError, so API callers that catch OSError still do.

    Parameters
    ----------
    path : str or os.PathLike or None
        The file or directory at fault, shown before the message (None: no path).
    message : str
        What is wrong; newlines are replaced by spaces to keep the error on one line.
    """

    exit_code = 3


class TrainingDiverged(InputError):
    """The training loss became NaN or infinite (non-finite inputs, a learning rate too high).

    Parameters
    ----------
    path : str or os.PathLike or None
        The file or directory at fault, shown before the message (None: no path).
    message : str
        What is wrong; newlines are replaced by spaces to keep the error on one line.
    """


def env_error(err: OSError, path: str | os.PathLike | None = None) -> EnvError:
    """An OSError as one line naming the path and the cause.

    Parameters
    ----------
    err : OSError
        The error the operating system raised.
    path : str or os.PathLike, optional
        The path to name (default: the error's own file name).

    Returns
    -------
    EnvError
        With the cause in words (``Permission denied``, ``No space left on device``, ...).
    """
    name = path if path is not None else (err.filename or err.filename2)
    cause = err.strerror or (errno.errorcode.get(err.errno or 0) if err.errno else None)
    return EnvError(name, cause or str(err) or type(err).__name__)


def safetensors_env_error(err: Exception, path: str | os.PathLike | None) -> EnvError:
    """A SafetensorError raised while writing (it wraps the OS error, e.g. ENOSPC, in its text).

    Parameters
    ----------
    err : Exception
        The SafetensorError.
    path : str or os.PathLike or None
        The file being written.

    Returns
    -------
    EnvError
        Naming `path` and the OS cause when the text holds an error code.
    """
    code = re.search(r"code: (\d+)", str(err))
    cause = os.strerror(int(code.group(1))) if code else str(err).splitlines()[0]
    return EnvError(path, f"cannot write ({cause})")


@contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds.

    Works for files and directories, so a failed command never leaves a partial output behind. An
    OSError while writing becomes an :class:`EnvError` naming `final` (not the temporary path).

    Parameters
    ----------
    final : str or os.PathLike
        The output path.
    suffix : str, optional
        Suffix of the temporary path (default: `final`'s suffixes, so writers pick the format).

    Returns
    -------
    Iterator[Path]
        The temporary path (not created).
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        suffix = suffix if suffix is not None else "".join(final.suffixes)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent
        )
        os.close(fd)
        os.unlink(tmp)
    except OSError as err:
        raise env_error(err, err.filename or final) from None
    tmp = Path(tmp)
    try:
        yield tmp
        _replace(tmp, final)
    except OSError as err:
        raise env_error(err, final) from None
    except EnvError as err:
        if err.path is not None and err.path.startswith(str(tmp)):  # a nested atomic write
            raise EnvError(final, err.message) from None
        raise
    finally:
        _remove(tmp)


def _replace(tmp: Path, final: Path) -> None:
    """Move `tmp` onto `final`. An old directory is first renamed aside (atomic, and harmless when
    a concurrent writer already moved it), so no window ever has a half-deleted `final`."""
    if tmp.is_dir() and final.is_dir() and not final.is_symlink():
        aside = final.with_name(f".{final.name}.old.{os.getpid()}.{id(tmp)}")
        try:
            os.replace(final, aside)
        except FileNotFoundError:
            aside = None
        os.replace(tmp, final)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(tmp, final)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


# -- the output policy ---------------------------------------------------------------------------

# Directories written before the marker existed, recognised by a file that only deepgami writes
# there and by every entry being one deepgami writes: (signature, entry patterns).
LEGACY_DIRS: dict[str, tuple[str, tuple[str, ...]]] = {
    "model": (
        "config.json",
        (
            "model.safetensors",
            "model.pt",
            "config.json",
            "training_history.tsv",
            "cv_results.tsv",
            "cv_summary.tsv",
            "imputation.json",
        ),
    ),
    "prioritize": (
        "summary.json",
        ("features.*", "latent.*", "links.*", "summary.json", "links_*.png", "enrichment.tsv"),
    ),
    "evaluate": ("run.json", ("*.tsv", "report.html", "run.json", "figures", "figures/*")),
    "pseudobulk": ("pseudobulk.json", ("*.h5ad", "pseudobulk.json")),
    "simulation": (
        "truth.json",
        ("genotype.*", "expression.*", "labels.csv", "eqtl.tsv", "grn.tsv", "truth*"),
    ),
    "simulation-cells": (
        "truth.json",
        ("cells.h5ad", "genotype.csv", "labels.csv", "eqtl.tsv", "truth.json"),
    ),
}
WORKSPACE_KINDS = ("run",)  # directories that are filled, never replaced: any folder will do
FILE_KINDS = ("cohort", "predictions", "metrics", "figure")
_CLAIMS: contextvars.ContextVar[ExitStack | None] = contextvars.ContextVar(
    "deepgami_claims", default=None
)


@contextmanager
def output_claims() -> Iterator[None]:
    """Scope of one command: every output claimed inside is released (unlocked) at its end."""
    with ExitStack() as stack:
        token = _CLAIMS.set(stack)
        try:
            yield
        finally:
            _CLAIMS.reset(token)


class OutputClaim:
    """An output path checked against the policy and locked for this command.

    Made by :func:`claim_output`. Write it with :meth:`atomic`, or let a library function write it
    and then :meth:`mark` it.

    Parameters
    ----------
    path : pathlib.Path
        The claimed output.
    kind : str
        What is written: a directory kind of `LEGACY_DIRS` or a file kind of `FILE_KINDS` (a file
        kind makes the output a file, any other kind a directory).
    """

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.kind = path, kind
        self.directory = kind not in FILE_KINDS
        self._created: list[Path] = []
        self._lock: tuple[int, Path] | None = None

    @contextmanager
    def atomic(self) -> Iterator[Path]:
        """:func:`atomic_path` onto the claimed path; a directory gets its marker before the rename.

        Returns
        -------
        Iterator[Path]
            The temporary path to write (a directory output must be created by the caller).
        """
        with atomic_path(self.path, suffix="" if self.directory else None) as tmp:
            yield tmp
            if self.directory and tmp.is_dir():
                _write_marker(tmp, self.kind)

    def mark(self) -> None:
        """Write the marker into the claimed directory after a library function wrote it."""
        if self.directory and self.path.is_dir():
            try:
                _write_marker(self.path, self.kind)
            except OSError as err:
                raise env_error(err, self.path) from None

    def release(self) -> None:
        """Unlock; remove parent folders this claim created when nothing was written."""
        if self._lock is not None:
            fd, lock = self._lock
            self._lock = None
            lock.unlink(missing_ok=True)  # unlink before close: see _acquire
            os.close(fd)
        if not self.path.exists():
            for folder in reversed(self._created):
                try:
                    folder.rmdir()
                except OSError:
                    break


def claim_output(
    path: str | os.PathLike,
    kind: str,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    flag: str = "--out",
) -> OutputClaim:
    """Check an output path against the policy and lock it for the rest of the command.

    The policy: an output may replace only what deepgami wrote there before (a directory with
    deepgami's marker, or a legacy one of the same kind; a file of the same kind), or nothing (a
    new path, an empty directory). Anything else is refused unless `overwrite`. A path that is an
    input of the command, contains one, or lies in an input directory is refused even with
    `overwrite`. One command at a time per output: a second finds it locked and stops.

    Parameters
    ----------
    path : str or os.PathLike
        The output (``--out``).
    kind : str
        What is written: a directory kind of `LEGACY_DIRS` or a file kind of `FILE_KINDS`.
    inputs : iterable of str or os.PathLike or None
        The command's input paths (files or directories; None entries are skipped).
    overwrite : bool, default False
        ``--overwrite``: replace what deepgami did not write (never an input).
    flag : str, default "--out"
        The option that named the output, for messages.

    Returns
    -------
    OutputClaim
        Released at the end of the enclosing :func:`output_claims` (the CLI's command), else
        when it is garbage-collected or :meth:`OutputClaim.release` is called.

    Raises
    ------
    InputError
        When the policy refuses the path (exit code 2).
    EnvError
        When another command holds the output, or the parent folder cannot be created.
    """
    out = Path(path)
    _check_inputs(
        out, [Path(p) for p in inputs if p is not None], kind not in WORKSPACE_KINDS, flag
    )
    if not overwrite:
        _check_replaceable(out, kind, flag)
    elif out.exists() and out.is_dir() != (kind not in FILE_KINDS):
        _check_replaceable(out, kind, flag)  # a file for a directory or the reverse: never
    claim = OutputClaim(out, kind)
    _acquire(claim)
    stack = _CLAIMS.get()
    if stack is not None:
        stack.callback(claim.release)
    return claim


def _check_inputs(out: Path, inputs: list[Path], replaced: bool, flag: str) -> None:
    """Refuse an output that is an input, or (when it is `replaced` as a whole) contains one."""
    target = out.resolve()
    for given in inputs:
        source = given.resolve()
        if source == target:
            raise InputError(out, f"{flag} is an input of this command; choose another {flag}")
        if replaced and target in source.parents:
            raise InputError(
                out, f"{flag} contains an input of this command ({given}); choose another {flag}"
            )
        if source.is_dir() and source in target.parents and out.exists():
            raise InputError(
                out,
                f"{flag} lies inside an input directory of this command ({given}); choose another "
                f"{flag}",
            )


def _check_replaceable(out: Path, kind: str, flag: str) -> None:
    if not out.exists() and not out.is_symlink():
        return
    if kind in FILE_KINDS:
        if out.is_dir():
            raise InputError(out, f"{flag} is a directory; it must name a file here")
        if not _is_file_kind(out, kind):
            raise InputError(
                out,
                f"{flag} exists and is not a {kind} file written by deepgami; pass "
                f"--overwrite to replace it, or choose another {flag}",
            )
        return
    if not out.is_dir():
        raise InputError(out, f"{flag} exists and is not a directory")
    if kind in WORKSPACE_KINDS:
        return
    foreign = _foreign_entries(out, kind)
    if foreign:
        raise InputError(
            out,
            f"holds files deepgami did not write here (e.g. {foreign[0]}); pass "
            "--overwrite to replace the whole directory, or choose another --out",
        )


def _entries(folder: Path) -> list[str]:
    """Every file and folder under `folder`, as sorted relative POSIX paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _foreign_entries(folder: Path, kind: str) -> list[str]:
    """Entries of an existing output directory that deepgami did not write as a `kind` output."""
    entries = [e for e in _entries(folder) if e != MARKER]
    if not entries:
        return []
    marker = folder / MARKER
    if marker.is_file():
        try:
            recorded = json.loads(marker.read_text())
            files = set(recorded["files"]) if recorded.get("kind") == kind else set()
        except (ValueError, KeyError, TypeError, OSError):
            files = set()
        return [e for e in entries if e not in files] or []
    signature, patterns = LEGACY_DIRS.get(kind, ("", ()))
    if not signature or not (folder / signature).exists():
        return entries
    if kind == "model" and not _is_model_config(folder / signature):
        return [signature]
    return [e for e in entries if not any(fnmatch.fnmatch(e, p) for p in patterns)]


def _is_model_config(path: Path) -> bool:
    try:
        config = json.loads(path.read_text())
    except (ValueError, OSError):
        return False
    return isinstance(config, dict) and "format_version" in config and "network" in config


def _is_file_kind(path: Path, kind: str) -> bool:
    """Whether an existing file is a deepgami output of `kind` (by its content, not its name)."""
    try:
        if kind == "figure":
            with open(path, "rb") as raw:
                return raw.read(8) == b"\x89PNG\r\n\x1a\n"
        if kind == "cohort":
            import h5py

            with h5py.File(path, "r") as f:
                return "uns" in f and ("build" in f["uns"] or "deepgami" in f["uns"])
        with open(path, encoding="utf-8") as handle:
            head = handle.read(1 << 20)
    except (OSError, UnicodeDecodeError):
        return False
    if kind == "predictions":
        columns = head.split("\n", 1)[0].split("\t")
        # one label: predicted; several targets: <target>:predicted or <target>:risk
        ends = ("predicted", ":risk")
        return columns[:1] == ["sample"] and any(c.endswith(ends) for c in columns)
    try:
        data = json.loads(head)
    except ValueError:
        return False
    # a label's metrics (classes or numeric), or several targets' under "targets"
    keys = ("balanced_accuracy", "r2", "targets")
    return isinstance(data, dict) and "fill" in data and any(k in data for k in keys)


def _write_marker(folder: Path, kind: str) -> None:
    files = [e for e in _entries(folder) if e != MARKER]
    text = json.dumps({"kind": kind, "files": files}, indent=1) + "\n"
    (folder / MARKER).write_text(text)


def _acquire(claim: OutputClaim) -> None:
    """Create missing parents and take the output's lock file (``.<name>.lock`` beside it).

    The lock file is unlinked on release; a waiter that opened the old file sees, after locking,
    that its inode is no longer the path's and tries again, so two holders never overlap.
    """
    out = claim.path
    folder = out.parent
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        for p in reversed(missing):
            p.mkdir()
            claim._created.append(p)
    except OSError as err:
        claim.release()
        raise env_error(err, err.filename or folder) from None
    try:
        import fcntl
    except ImportError:  # no flock (Windows): atomic renames alone
        return
    lock = folder / f".{out.name}.lock"
    for _ in range(10):
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            claim.release()
            # The lock is the first file made in the folder: name the folder and what was refused
            # (a pseudo file system such as /proc answers "No such file or directory").
            raise EnvError(folder, f"cannot create files here ({env_error(err).message})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            claim.release()
            raise EnvError(
                out,
                "another deepgami command is writing this output now; wait for it to "
                "finish, or choose another --out",
            ) from None
        except OSError:  # a file system without locks (some NFS): atomic renames alone
            os.close(fd)
            lock.unlink(missing_ok=True)
            return
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            claim._lock = (fd, lock)
            return
        os.close(fd)
    raise EnvError(out, "cannot lock this output (its lock file keeps changing)")
