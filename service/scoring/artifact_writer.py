"""Writing a model artifact all or nothing (the reader and the contract are in
:mod:`service.scoring.artifact`). Only the training CLI writes artifacts; the service reads.
"""

from __future__ import annotations

import json
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from service.scoring.artifact import model_contract, sha256_file, torchscript_deprecation_silenced
from service.scoring.manifest import (
    CONTRACT_FILE,
    EXPORT_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    TORCHSCRIPT_FILE,
    ArtifactFile,
    FileFormat,
    Manifest,
)


class ArtifactSwapFailed(OSError):
    """The new artifact could not take the old one's place, nor the old one return to it."""


def write_artifact(
    out_dir: Path,
    *,
    scripted: torch.jit.ScriptModule,
    reference_errors: np.ndarray,
    manifest_fields: dict[str, Any],
    exported: torch.export.ExportedProgram | None = None,
) -> Manifest:
    """Write the artifact all or nothing: every file goes to a hidden staging folder beside
    ``out_dir``, the manifest (validated, with their checksums) last, and only then does the
    folder take ``out_dir``'s place. A failure before that leaves ``out_dir`` as it was, so
    replacing a model never destroys the one being served. A symbolic link is followed: the
    folder it points to is replaced and the link kept."""
    out_dir = Path(out_dir)
    if out_dir.is_symlink():
        out_dir = out_dir.resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per export: two exports of one version never share a staging folder.
    # mkdir, not mkdtemp: mkdtemp's folder is private (0700), so a model trained by one user
    # could not be read by the service running as another (the container's user).
    staging = out_dir.parent / f".{out_dir.name}.staging-{secrets.token_hex(8)}"
    staging.mkdir()
    try:
        manifest = _write_files(
            staging,
            scripted=scripted,
            reference_errors=reference_errors,
            manifest_fields=manifest_fields,
            exported=exported,
        )
        _swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _write_files(
    folder: Path,
    *,
    scripted: torch.jit.ScriptModule,
    reference_errors: np.ndarray,
    manifest_fields: dict[str, Any],
    exported: torch.export.ExportedProgram | None,
) -> Manifest:
    written: dict[str, FileFormat] = {}
    # The files beside model.pt first: their checksums go into its contract, so a
    # model.pt2 or reference sample from another model is refused at load.
    if exported is not None:
        torch.export.save(exported, str(folder / EXPORT_FILE))
        written[EXPORT_FILE] = "torch.export"
    np.save(folder / REFERENCE_FILE, np.asarray(reference_errors, dtype=np.float32))
    written[REFERENCE_FILE] = "npy"
    companions = {name: sha256_file(folder / name) for name in written}
    contract = json.dumps(
        {**model_contract(manifest_fields), "companion_files": companions}, sort_keys=True
    )
    with torchscript_deprecation_silenced():
        torch.jit.save(
            scripted, str(folder / TORCHSCRIPT_FILE), _extra_files={CONTRACT_FILE: contract}
        )
    written[TORCHSCRIPT_FILE] = "torchscript"
    files = {
        name: ArtifactFile(
            format=fmt,
            sha256=sha256_file(folder / name),
            bytes=(folder / name).stat().st_size,
        )
        for name, fmt in written.items()
    }
    fields = {
        "torch_version": torch.__version__,
        "created_at": datetime.now(UTC),
        **manifest_fields,
        "files": files,
    }
    manifest = Manifest.model_validate(fields)
    (folder / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
    return manifest


def _swap_in(staging: Path, out_dir: Path) -> None:
    """``staging`` becomes ``out_dir``; a model already there is moved aside first and removed
    only once the new one is in place (put back if the move fails)."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    if not out_dir.is_dir():
        raise NotADirectoryError(f"{out_dir} exists and is not a folder")
    replaced = staging.with_name(staging.name.replace(".staging-", ".replaced-", 1))
    out_dir.rename(replaced)
    try:
        staging.rename(out_dir)
    except BaseException as exc:
        try:
            replaced.rename(out_dir)
        except OSError:
            raise ArtifactSwapFailed(
                f"the new artifact could not replace {out_dir} ({exc}) and the previous one "
                f"could not be put back: it is in {replaced}; move it back to {out_dir}"
            ) from exc
        raise
    shutil.rmtree(replaced, ignore_errors=True)
