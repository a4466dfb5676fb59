"""Execute one notebook under a profile: ``python -m gi_lib.runner``.

A notebook's source is a jupytext percent file under ``notebooks/``; its
``parameters`` cell holds the ``cpu`` profile. A profile file
``notebooks/profiles/<profile>.yaml`` maps a notebook (its path under
``notebooks/`` without ``.py``, e.g. ``attacks/dlg``) to parameter overrides::

    attacks/dlg:
      num_trials: 1

The runner checks the overrides against the parameters cell before anything
runs, always injects ``profile=<name>``, executes the notebook with papermill
in a kernel of this interpreter (working directory: the repository root;
``GI_RESULTS_DIR`` set for the kernel) and writes the executed notebook
atomically. A failed run leaves neither a notebook nor a results file behind,
so a build never shows stale numbers. A run stopped by SIGTERM or Ctrl-C
(SIGINT) shuts its kernel down, removes its temporary notebook and results
file, and the command exits with 128 + the signal's number.

Example::

    python -m gi_lib.runner notebooks/attacks/dlg.py --profile smoke \\
        --output _build/smoke/notebooks/attacks/dlg.ipynb \\
        --results-dir _build/smoke/results
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gi_lib._cli import notebook_parser, parse_parameters
from gi_lib._io import default_file_mode
from gi_lib.profiles import profile_names
from gi_lib.results import RESULTS_ENV

NOTEBOOKS_DIR = "notebooks"
PROFILES_DIR = "profiles"
PARAMETERS_TAG = "parameters"
KERNEL_NAME = "python3"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class RunnerError(Exception):
    """A problem the user can fix; its message is one paragraph that says how."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM or SIGINT) while it ran.

    A ``KeyboardInterrupt`` so that every layer between the signal and the
    runner (asyncio, nbclient's kernel context, papermill) unwinds as it does
    for Ctrl-C: the kernel is shut down on the way out.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name}")


# The signals a run turns into `Interrupted`. Each is handled once: a repeat
# while the run cleans up acts as it would without the runner (SIGTERM ends the
# process, Ctrl-C raises KeyboardInterrupt), so a stuck clean-up can be cut short.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass
class _StopRequest:
    """Which signal stopped the run, if one did."""

    signum: int | None = None


@contextlib.contextmanager
def _signals_as_interrupts() -> Iterator[_StopRequest]:
    """Turn SIGTERM and SIGINT into `Interrupted` in the main thread.

    Without this, SIGTERM ends the process at once: the temporary notebook
    stays beside the output and the kernel is orphaned. Outside the main
    thread (where Python cannot install handlers) this does nothing. The
    previous handlers are restored on exit.

    Yields:
        The request that the handler fills in with the signal's number.
    """
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    previous: dict[int, Any] = {}

    def restore() -> None:
        for number, handler in previous.items():
            # None: a handler installed outside Python, which cannot be put back.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)

    def stop(signum: int, frame: object) -> None:
        restore()
        request.signum = signum
        raise Interrupted(signum)

    try:
        for number in _STOP_SIGNALS:
            previous[number] = signal.signal(number, stop)
        yield request
    finally:
        restore()


@dataclass(frozen=True)
class NotebookSource:
    """Where a notebook source lives and the names derived from its path."""

    path: Path  # .../notebooks/attacks/dlg.py
    root: Path  # the repository root: the folder holding notebooks/

    @property
    def key(self) -> str:
        """Path under ``notebooks/`` without the suffix: the profile key."""
        return (
            self.path.relative_to(self.root / NOTEBOOKS_DIR).with_suffix("").as_posix()
        )

    @property
    def stem(self) -> str:
        """The notebook's short name, which also names its results file."""
        return self.path.stem


def locate(path: str | os.PathLike[str]) -> NotebookSource:
    """Find the repository root of a notebook source (the parent of notebooks/)."""
    source = Path(path).resolve()
    if not source.is_file():
        raise RunnerError(f"Notebook source {path} does not exist.")
    if source.suffix != ".py":
        raise RunnerError(
            f"{path} is not a notebook source: sources are jupytext percent "
            "files ending in .py (executed .ipynb files are generated)."
        )
    for parent in source.parents:
        if parent.name == NOTEBOOKS_DIR:
            return NotebookSource(path=source, root=parent.parent)
    raise RunnerError(
        f"{path} is not inside a {NOTEBOOKS_DIR}/ folder, so it has no profile "
        "key; put it under notebooks/<category>/."
    )


def load_profile(profiles_dir: Path, profile: str) -> dict[str, dict[str, Any]]:
    """Read a profile file: notebook key -> parameter overrides.

    Raises:
        RunnerError: the profile does not exist or is not a mapping of mappings.
    """
    path = profiles_dir / f"{profile}.yaml"
    if not path.is_file():
        valid = ", ".join(profile_names(profiles_dir)) or "none found"
        raise RunnerError(
            f"Unknown profile {profile!r}: there is no {path}. Valid profiles: {valid}."
        )
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(content, Mapping):
        raise RunnerError(
            f"{path} must map notebook keys (like attacks/dlg) to parameter "
            f"overrides, but holds a {type(content).__name__}."
        )
    overrides: dict[str, dict[str, Any]] = {}
    for key, values in content.items():
        values = {} if values is None else values
        if not isinstance(values, Mapping):
            raise RunnerError(
                f"{path}: the entry {key!r} must be a mapping of parameter "
                f"names to values (use {{}} for none), not {values!r}."
            )
        overrides[str(key)] = dict(values)
    return overrides


def read_notebook(path: Path) -> Any:
    """Read a jupytext percent source as an nbformat notebook."""
    import jupytext

    notebook = jupytext.read(path, fmt="py:percent")
    # Pin the kernel and language so papermill need not guess them.
    notebook.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata.setdefault("language_info", {"name": "python"})
    return notebook


def parameter_defaults(notebook: Any, *, name: str = "notebook") -> dict[str, Any]:
    """Names (and literal default values) assigned in the ``parameters`` cell.

    Raises:
        RunnerError: there is not exactly one cell tagged ``parameters``, or it
            does not parse.
    """
    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code"
        and PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])
    ]
    if len(cells) != 1:
        raise RunnerError(
            f"{name} must have exactly one code cell tagged {PARAMETERS_TAG!r} "
            f"(found {len(cells)}); in a percent source write "
            '`# %% tags=["parameters"]` above it.'
        )
    try:
        tree = ast.parse(cells[0].source)
    except SyntaxError as error:
        raise RunnerError(
            f"{name}: the parameters cell does not parse ({error.msg}, line "
            f"{error.lineno})."
        ) from error
    defaults: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    defaults[target.id] = ast.literal_eval(value)
                except ValueError:
                    defaults[target.id] = None
    return defaults


def resolve_parameters(
    source: NotebookSource,
    notebook: Any,
    *,
    profile: str,
    profiles_dir: Path,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Parameters to inject: the profile's overrides, then ``extra``, then profile.

    Raises:
        RunnerError: unknown profile, or a name the parameters cell lacks.
    """
    overrides = load_profile(profiles_dir, profile).get(source.key, {})
    defaults = parameter_defaults(notebook, name=source.key)
    valid = ", ".join(sorted(defaults)) or "none"
    if "profile" not in defaults:
        raise RunnerError(
            f"{source.key}: the parameters cell must define `profile` (set to "
            f'"cpu"), which the runner always overrides. Its parameters: {valid}.'
        )
    for origin, values in (
        (f"profile {profile!r} ({profiles_dir / profile}.yaml)", overrides),
        ("the command line", extra or {}),
    ):
        unknown = sorted(set(values) - set(defaults))
        if unknown:
            raise RunnerError(
                f"{source.key}: {origin} sets {', '.join(unknown)}, which the "
                f"notebook's parameters cell does not define. Valid names: {valid}."
            )
        if "profile" in values:
            raise RunnerError(
                f"{source.key}: {origin} sets `profile`; choose the profile with "
                "--profile instead."
            )
    return {**overrides, **(extra or {}), "profile": profile}


def _kernel_spec_dir() -> tempfile.TemporaryDirectory[str]:
    """A kernelspec named python3 that runs this very interpreter.

    A user-wide ``python3`` kernelspec could otherwise point at another Python
    without gi_lib; ``JUPYTER_PATH`` takes precedence over it.
    """
    folder = tempfile.TemporaryDirectory(prefix="gi-book-kernel-")
    spec_dir = Path(folder.name) / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return folder


class _KernelGuard:
    """The kernels of one run: stopped at once on a signal, never left behind.

    nbclient shuts its kernel down when an exception leaves the execution,
    gracefully (the kernel is asked to exit, and a busy kernel then prints a
    traceback about closed sockets). After a signal the kernel is killed
    instead, which also ends the processes it started. An exception that
    arrives while the kernel client is still connecting escapes nbclient's
    clean-up; `shut_down` stops whatever kernel is left.
    """

    def __init__(self, stop: _StopRequest) -> None:
        from jupyter_client.manager import AsyncKernelManager

        self.managers: list[AsyncKernelManager] = []
        guard = self

        class GuardedKernelManager(AsyncKernelManager):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                guard.managers.append(self)

            async def shutdown_kernel(
                self, now: bool = False, restart: bool = False
            ) -> None:
                stopping = stop.signum is not None
                await super().shutdown_kernel(now=now or stopping, restart=restart)

        self.manager_class = GuardedKernelManager

    def shut_down(self) -> None:
        """Kill any kernel of this run that is still running."""
        from jupyter_core.utils import run_sync

        for manager in self.managers:
            if manager.has_kernel:
                run_sync(manager.shutdown_kernel)(now=True)


def _one_paragraph(text: str) -> str:
    return " ".join(_ANSI.sub("", str(text)).split())


def _failure_message(
    key: str, profile: str, error: BaseException, *, verbose: bool = False
) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        cell = f"cell In [{error.exec_count}]" if error.exec_count else "a cell"
        what = f"{error.ename}: {_one_paragraph(error.evalue)}"
        where = f"in {cell}"
    else:
        what = f"{type(error).__name__}: {_one_paragraph(error)}"
        where = "while running"
    if not what.endswith((".", "!", "?")):
        what += "."
    message = (
        f"{key} failed {where} with the {profile!r} profile. {what} The partial "
        "notebook and its results file were removed"
    )
    if verbose:
        return f"{message}. The notebook's traceback:\n\n{_ANSI.sub('', str(error))}"
    return f"{message}; rerun with --verbose for the whole traceback."


def run_notebook(
    notebook_path: str | os.PathLike[str],
    *,
    profile: str,
    output: str | os.PathLike[str],
    results_dir: str | os.PathLike[str],
    extra_parameters: Mapping[str, Any] | None = None,
    profiles_dir: str | os.PathLike[str] | None = None,
    require_results: bool = True,
    log_output: bool = False,
    verbose: bool = False,
) -> Path:
    """Execute a notebook source under a profile and write the executed notebook.

    Args:
        notebook_path: a jupytext percent source under ``notebooks/``.
        profile: a profile name (``notebooks/profiles/<profile>.yaml``).
        output: where the executed ``.ipynb`` goes (written atomically).
        results_dir: folder for results files; exported to the kernel as
            ``GI_RESULTS_DIR``. ``<results_dir>/<stem>.json`` is deleted first.
        extra_parameters: further overrides, applied after the profile's.
        profiles_dir: defaults to ``notebooks/profiles`` of the repository.
        require_results: fail when the run writes no ``<stem>.json``.
        log_output: stream cell outputs (progress bars included) to this
            process's stdout and stderr.
        verbose: include the notebook's traceback in the error.

    Returns:
        The path of the executed notebook.

    Raises:
        RunnerError: bad profile or parameters (before running), or a failed
            run (after removing the partial notebook and results file).
        Interrupted: SIGTERM or SIGINT arrived (in the main thread); the kernel
            was shut down and the partial notebook and results file removed.
    """
    source = locate(notebook_path)
    profiles = (
        Path(profiles_dir)
        if profiles_dir is not None
        else source.root / NOTEBOOKS_DIR / PROFILES_DIR
    )
    notebook = read_notebook(source.path)
    parameters = resolve_parameters(
        source, notebook, profile=profile, profiles_dir=profiles, extra=extra_parameters
    )

    with _signals_as_interrupts() as stop:
        target = _execute(
            source,
            notebook,
            parameters,
            kernels=_KernelGuard(stop),
            profile=profile,
            output=Path(output),
            results=Path(results_dir),
            require_results=require_results,
            log_output=log_output,
            verbose=verbose,
        )
    return target


def _execute(
    source: NotebookSource,
    notebook: Any,
    parameters: Mapping[str, Any],
    *,
    kernels: _KernelGuard,
    profile: str,
    output: Path,
    results: Path,
    require_results: bool,
    log_output: bool,
    verbose: bool,
) -> Path:
    """Execute the checked notebook and write it atomically (see `run_notebook`)."""
    import papermill

    target = output.resolve()
    results = results.resolve()
    results_file = results / f"{source.stem}.json"
    # Stale outputs must never outlive the run that replaces them.
    results_file.unlink(missing_ok=True)
    target.unlink(missing_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)

    saved_env = {name: os.environ.get(name) for name in (RESULTS_ENV, "JUPYTER_PATH")}
    tmp: Path | None = None
    kernel_dir: tempfile.TemporaryDirectory[str] | None = None
    started = time.perf_counter()
    try:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.stem}.", suffix=".tmp.ipynb", dir=target.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        kernel_dir = _kernel_spec_dir()
        os.environ[RESULTS_ENV] = str(results)
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            filter(None, [kernel_dir.name, saved_env["JUPYTER_PATH"]])
        )
        # debugpy warns about frozen modules on every kernel start; it is noise.
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        papermill.execute_notebook(
            notebook,
            str(tmp),
            parameters=parameters,
            kernel_name=KERNEL_NAME,
            kernel_manager_class=kernels.manager_class,
            language="python",
            progress_bar=False,
            stdout_file=sys.stdout if log_output else None,
            stderr_file=sys.stderr if log_output else None,
            start_timeout=300,
            cwd=str(source.root),
        )
        if require_results and not results_file.is_file():
            raise RunnerError(
                f"{source.key} ran with the {profile!r} profile but wrote no "
                f"results file {results_file}; a paper notebook ends with "
                "page.finish(result, rows, claims) (gi_lib.notebook.Page), which "
                "writes it."
            )
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, target)
    except BaseException as error:
        kernels.shut_down()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        results_file.unlink(missing_ok=True)
        if isinstance(error, RunnerError) or not isinstance(error, Exception):
            raise
        message = _failure_message(source.key, profile, error, verbose=verbose)
        raise RunnerError(message) from error
    finally:
        if kernel_dir is not None:
            kernel_dir.cleanup()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    seconds = time.perf_counter() - started
    print(f"{source.key} [{profile}]: ran in {seconds:.1f} s -> {target}", flush=True)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = notebook_parser(
        "runner",
        "Execute a notebook source under a profile with papermill.",
        parameters="override one parameter after the profile (VALUE is read as YAML)",
        output="executed .ipynb to write",
    )
    parser.add_argument(
        "--results-dir", required=True, help="folder for <notebook>.json results"
    )
    parser.add_argument(
        "--no-results",
        action="store_true",
        help="do not require the notebook to write a results file",
    )
    parser.add_argument(
        "--log-output", action="store_true", help="stream cell outputs while running"
    )
    args = parser.parse_args(argv)
    try:
        run_notebook(
            args.notebook,
            profile=args.profile,
            output=args.output,
            results_dir=args.results_dir,
            extra_parameters=parse_parameters(args.param),
            profiles_dir=args.profiles_dir,
            require_results=not args.no_results,
            log_output=args.log_output,
            verbose=args.verbose,
        )
    except RunnerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as error:
        signum = getattr(error, "signum", signal.SIGINT)
        print(
            f"error: {args.notebook} was stopped by {signal.Signals(signum).name}; "
            "its kernel was shut down and the partial notebook and results file "
            "were removed.",
            file=sys.stderr,
        )
        return 128 + signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
