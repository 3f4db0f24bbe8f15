"""The MLflow tracking server's image (infra/mlflow/Dockerfile), checked statically: hadolint, a
numeric non-root user, pinned additions, and no credentials."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.infra.test_dockerfile import instructions

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "infra" / "mlflow" / "Dockerfile"


def test_hadolint_passes():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_runs_as_a_numeric_non_root_user_and_pins_what_it_adds():
    ops = instructions(DOCKERFILE)
    uid = [args for op, args in ops if op == "USER"][-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    installs = " ".join(args for op, args in ops if op == "RUN" and "pip install" in args)
    packages = [w for w in installs.split() if not w.startswith("-") and w not in ("pip", "install")]
    assert packages and all(re.fullmatch(r"[\w.-]+==[\w.]+", p) for p in packages), packages
    assert not any(re.search(r"(KEY|SECRET|TOKEN|PASSWORD)", args, re.I) for op, args in ops if op in ("ENV", "ARG"))
