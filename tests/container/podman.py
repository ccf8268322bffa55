"""Build the project's image with podman from a Debian base made offline, and run it.

No container registry is reachable here, so the base image is bootstrapped from Debian's
packages with mmdebstrap (bookworm: python3.11, venv, ca-certificates, tini) and kept as
a tarball under ``.cache/image/`` (gitignored): a second run imports it, or finds it
already imported, instead of bootstrapping again. The host's extra CA certificates go
into the base's trust store, so the build can reach PyPI through a TLS-inspecting
egress proxy where there is one; the base is a local test artefact, never pushed.

podman runs with runc (crun refuses this machine's cgroup mode) and small ulimits (the
defaults exceed what the sandbox allows).
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "image"
HOST_CAS = Path("/usr/local/share/ca-certificates")
PODMAN = ["podman", "--runtime", "runc"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates", "tini")
# what the image does not need: manuals, docs and translations of the base's packages
EXCLUDED = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")
BASE_ENV = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    # uv trusts its own root list unless told to use the system's (with the host's CAs)
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
)


def missing_tools() -> list[str]:
    return [tool for tool in ("podman", "runc", "mmdebstrap") if shutil.which(tool) is None]


def podman(
    *args: str, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=check
    )


def _host_cas() -> list[Path]:
    return sorted(HOST_CAS.glob("*.crt")) if HOST_CAS.is_dir() else []


def _base_recipe() -> str:
    """Everything the base depends on: a change in any of it makes a new base."""
    digest = hashlib.sha256()
    for part in ("bookworm", *PACKAGES, *EXCLUDED, *BASE_ENV):
        digest.update(part.encode() + b"\0")
    for ca in _host_cas():
        digest.update(ca.name.encode() + b"\0" + ca.read_bytes())
    return digest.hexdigest()[:12]


@contextmanager
def _locked() -> Iterator[None]:
    """One base build at a time, across concurrent test sessions."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / "lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def base_image() -> str:
    """The tag of the local Debian base, bootstrapped and imported only when missing."""
    recipe = _base_recipe()
    tag = f"localhost/tocsin-base:bookworm-{recipe}"
    with _locked():
        if podman("image", "exists", tag, check=False).returncode == 0:
            return tag
        tarball = CACHE / f"base-bookworm-{recipe}.tar"
        if not tarball.exists():
            for stale in CACHE.glob("base-*.tar"):
                stale.unlink()
            partial = tarball.with_suffix(".partial")
            hooks = [
                f'cp -a {HOST_CAS}/. "$1/usr/local/share/ca-certificates/"',
                'chroot "$1" update-ca-certificates',
            ]
            subprocess.run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=minbase",
                    f"--include={','.join(PACKAGES)}",
                    *(f"--dpkgopt=path-exclude={path}" for path in EXCLUDED),
                    *(f"--customize-hook={hook}" for hook in hooks if _host_cas()),
                    "--format=tar",
                    "bookworm",
                    str(partial),
                ],
                check=True,
                capture_output=True,
                timeout=600,
            )
            partial.rename(tarball)
        changes = [arg for env in BASE_ENV for arg in ("--change", f"ENV={env}")]
        podman("import", *changes, str(tarball), tag)
    return tag


def build_image(base: str) -> str:
    """Build ./Dockerfile from ``base``; a throwaway tag the caller removes."""
    tag = f"localhost/tocsin-test:{uuid.uuid4().hex[:10]}"
    # --network host: the build stage installs uv and the locked set from PyPI;
    # --layers=false: no intermediate images left behind
    result = podman(
        "build",
        "--network",
        "host",
        "--layers=false",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--tag",
        tag,
        str(ROOT),
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"podman build failed:\n{(result.stdout + result.stderr)[-6000:]}")
    return tag


def remove_image(tag: str) -> None:
    podman("rmi", "--force", tag, check=False)


@dataclass
class Containers:
    """Containers started from one image as its own user (no --user: the image's USER
    is what is tested), read-only root with a tmpfs /tmp, no capabilities, on the
    host's network (the local broker listens on 127.0.0.1)."""

    image: str
    prefix: str = field(default_factory=lambda: f"tocsin-test-{uuid.uuid4().hex[:8]}")
    names: list[str] = field(default_factory=list)

    def _args(self, env: dict[str, str], mounts: dict[Path, str]) -> list[str]:
        args = [
            *ULIMITS,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp:rw,size=64m,mode=1777",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for source, target in mounts.items():
            args += ["--volume", f"{source}:{target}:ro"]
        return args

    def run_once(self, *command: str, env: dict[str, str], timeout: float = 180) -> str:
        """A one-shot command (``topics create``); its output, or the failure with it."""
        result = podman(
            "run", "--rm", *self._args(env, {}), self.image, *command,
            timeout=timeout, check=False,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{output}"
        return output

    def start(
        self, kind: str, *command: str, env: dict[str, str], mounts: dict[Path, str] | None = None
    ) -> str:
        name = f"{self.prefix}-{kind}"
        podman("run", "--detach", "--name", name, *self._args(env, mounts or {}),
               self.image, *command)  # fmt: skip
        self.names.append(name)
        return name

    def running(self, name: str) -> bool:
        state = podman("inspect", "--format", "{{.State.Running}}", name, check=False)
        return state.stdout.strip() == "true"

    def logs(self, name: str) -> str:
        result = podman("logs", name, check=False)
        return (result.stdout + result.stderr)[-4000:]

    def exec(self, name: str, *command: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", name, *command, check=False, timeout=60)

    def stop(self, timeout_s: int) -> dict[str, int]:
        """SIGTERM to every container at once (SIGKILL after ``timeout_s``); exit codes."""
        podman("stop", "--time", str(timeout_s), *self.names, check=False,
               timeout=timeout_s + 60)  # fmt: skip
        codes = {}
        for name in self.names:
            code = podman("inspect", "--format", "{{.State.ExitCode}}", name, check=False)
            codes[name] = int(code.stdout.strip() or -1)
        return codes

    def stop_all(self) -> None:
        for name in self.names:
            podman("rm", "--force", "--time", "10", name, check=False, timeout=60)
        self.names.clear()


def wait_for(
    what: str, check: Callable[[], object], deadline_s: float, interval: float = 0.5
) -> None:
    """Poll ``check()`` until it is truthy or the deadline passes (then fail naming it)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {deadline_s:.0f}s waiting for {what}")


if __name__ == "__main__":
    # `python -m tests.container.podman base`: the local base's tag (`make image` uses it)
    import sys

    if sys.argv[1:] != ["base"]:
        raise SystemExit("usage: python -m tests.container.podman base")
    print(base_image())
