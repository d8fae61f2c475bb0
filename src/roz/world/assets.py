"""Openly licensed emoji artwork: fetched once from the npm registry, verified, cached.

The four npm packages (exact versions, pinned with the registry's own sha512 integrity and
our sha256 of the tarball) are downloaded to ``roz_home()/assets/_tarballs/`` and only the files
ROZ-Mini needs are extracted to ``roz_home()/assets/<name>-<version>/package/...``; a
``MANIFEST.json`` records the sha256 of every extracted file.  Nothing here is ever committed.

Offline: set ``ROZ_ASSETS=/path`` to a folder holding either the tarballs as ``npm pack``
writes them (``<name>-<version>.tgz``) or the extracted packages (``<name>-<version>/package/``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from roz.errors import DataError
from roz.paths import roz_home


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    sha256: str  # of the registry tarball
    integrity: str  # npm's dist.integrity (sha512, SRI form)
    license: str

    @property
    def stem(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.name}/-/{self.stem}.tgz"


PACKAGES: dict[str, Package] = {
    p.name: p
    for p in [
        Package(
            "emoji-datasource-google",
            "16.0.0",
            "fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
            "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
            "MIT (emoji-datasource); artwork: Noto Emoji, Apache-2.0",
        ),
        Package(
            "emoji-datasource-twitter",
            "16.0.0",
            "f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
            "sha512-7F+uCuHH+7Qnrc15P5tnbvKkg9E6tlzi4MnT2uW1RlN4pLYTza6cP/dstIfSDMtpjFLWuZewWg8jBbuL2eyELQ==",
            "MIT (emoji-datasource); artwork: Twemoji, CC-BY-4.0",
        ),
        Package(
            "openmoji",
            "17.0.0",
            "55ee7d13485dec86e9f38c1f3a645a13382d33ff97c0cd845ee824b0aef45e68",
            "sha512-EBnYrNGdcdw+OSXmENeNE1yBNRu6tOraTmoOyUbJkTmvT/+XETp8RZLSJFzD3lrPc5N9CzsyPnRTk0Vp4UaI9w==",
            "CC-BY-SA-4.0",
        ),
        Package(
            "fluentui-emoji",
            "1.3.0",
            "ec892e607e854859b812c7d827801756adc19955b0ef56d4ae8afcddd19492c5",
            "sha512-JTXXwqIie2rWTgOkIJDJxr0WtwTz2WU4kdOq8buLVThYwQ264aFR2jdTyuon2oEbLqqGMT64zI4btyn1saB2xw==",
            "MIT",
        ),
    ]
}

# Artwork styles: style -> (package, path template inside package/, how to name the file).
#   {cp}: emoji-datasource stem (lower case);  {CP}: OpenMoji stem (upper case);  {fl}: Fluent stem
STYLES: dict[str, tuple[str, str]] = {
    "google": ("emoji-datasource-google", "img/google/64/{cp}.png"),
    "twitter": ("emoji-datasource-twitter", "img/twitter/64/{cp}.png"),
    "openmoji": ("openmoji", "color/svg/{CP}.svg"),
    "openmoji-black": ("openmoji", "black/svg/{CP}.svg"),
    "fluent-flat": ("fluentui-emoji", "icons/flat/{fl}.svg"),
    "fluent-modern": ("fluentui-emoji", "icons/modern/{fl}.svg"),
}

ASSETS_VERSION = 1


def _candidates(style: str, codepoint: str, fluent: str) -> list[str]:
    """Paths (relative to the package root, i.e. below ``package/``) that may hold this art."""
    _, tmpl = STYLES[style]
    cps = [codepoint, f"{codepoint}-fe0f"]
    return [tmpl.format(cp=c, CP=c.upper(), fl=fluent) for c in cps]


def needed_files() -> dict[str, list[list[str]]]:
    """Per package: for each (item, style) a list of alternative paths (one must exist)."""
    from roz.world.concepts import CONCEPTS, EXTRAS

    items = [(c.codepoint, c.fluent) for c in CONCEPTS] + [(e[0], e[1]) for e in EXTRAS]
    out: dict[str, list[list[str]]] = {p: [] for p in PACKAGES}
    for cp, fl in items:
        for style, (pkg, _) in STYLES.items():
            out[pkg].append(_candidates(style, cp, fl))
    return out


def _sri_sha512(data_path: Path) -> tuple[str, str]:
    h512, h256 = hashlib.sha512(), hashlib.sha256()
    with open(data_path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h512.update(chunk)
            h256.update(chunk)
    return "sha512-" + base64.b64encode(h512.digest()).decode(), h256.hexdigest()


def _verify_tarball(pkg: Package, path: Path) -> None:
    sri, sha = _sri_sha512(path)
    if sha != pkg.sha256 or sri != pkg.integrity:
        raise DataError(
            f"{path}: checksum mismatch for {pkg.stem} (sha256 {sha}, expected {pkg.sha256})",
            hint=f"delete it and fetch again; the registry tarball is {pkg.url}",
        )


def _download(pkg: Package, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part{os.getpid()}")
    req = urllib.request.Request(pkg.url, headers={"User-Agent": "roz-world/1"})
    with urllib.request.urlopen(req, timeout=120) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f, 1 << 20)
    _verify_tarball(pkg, tmp)
    os.replace(tmp, dest)


def _safe_member(name: str) -> str | None:
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] != "package":
        return None
    return str(PurePosixPath(*p.parts[1:]))


def _extract(pkg: Package, tgz: Path, wanted: set[str], dest_root: Path) -> None:
    """Extract the wanted regular files (paths below ``package/``) into dest_root/package/."""
    with tarfile.open(tgz, "r:gz") as tf:
        for m in tf:
            rel = _safe_member(m.name)
            if rel is None or rel not in wanted or not m.isreg():
                continue
            data = tf.extractfile(m).read()
            out = dest_root / "package" / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)


def _missing_help() -> str:
    cmds = " && ".join(f"npm pack {p.name}@{p.version}" for p in PACKAGES.values())
    return (
        "ROZ-Mini needs four openly licensed emoji packages from the npm registry. Without network "
        f"access, fetch them elsewhere (`{cmds}`) and set ROZ_ASSETS=/path/to/that/folder "
        "(the .tgz files as npm pack writes them, or each extracted to <name>-<version>/package/)"
    )


class Assets:
    """Resolved asset files: ``path(style, codepoint, fluent)`` -> a file on disk."""

    def __init__(self, roots: dict[str, Path], files_sha: dict[str, str]):
        self.roots = roots  # package name -> folder containing package/
        self.files_sha = files_sha  # "<pkg>/<rel>" -> sha256

    def path(self, style: str, codepoint: str, fluent: str) -> Path:
        pkg, _ = STYLES[style]
        for rel in _candidates(style, codepoint, fluent):
            p = self.roots[pkg] / "package" / rel
            if p.is_file():
                return p
        raise DataError(
            f"asset for {style} {codepoint} ({fluent}) not found under {self.roots[pkg]}",
            hint="the asset folder is incomplete; " + _missing_help(),
        )

    def sprite_dirs(self) -> list[Path]:
        """Sprite caches that may sit beside the packages (read only)."""
        return sorted({r.parent / "sprites" for r in self.roots.values()})

    def fingerprint(self) -> str:
        lines = "".join(f"{k} {v}\n" for k, v in sorted(self.files_sha.items()))
        return hashlib.sha256(lines.encode()).hexdigest()


def file_key(assets: "Assets", path: Path) -> str:
    """The manifest key ("<package>/<path below package/>") of a resolved asset path."""
    for pkg, r in assets.roots.items():
        try:
            return f"{pkg}/{Path(path).relative_to(r / 'package').as_posix()}"
        except ValueError:
            continue
    return ""


def _file_sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _resolve_all(roots: dict[str, Path]) -> dict[str, str]:
    shas: dict[str, str] = {}
    missing: list[str] = []
    for pkg, groups in needed_files().items():
        for alts in groups:
            for rel in alts:
                p = roots[pkg] / "package" / rel
                if p.is_file():
                    shas[f"{pkg}/{rel}"] = _file_sha(p)
                    break
            else:
                missing.append(f"{pkg}/package/{alts[0]}")
    if missing:
        raise DataError(
            f"{len(missing)} artwork files missing, e.g. {missing[:3]}",
            hint=_missing_help(),
        )
    return shas


def assets_dir() -> Path:
    return roz_home() / "assets"


def ensure_assets(fetch: bool = True) -> Assets:
    """The verified artwork; fetched from the npm registry on first use.

    Order: ``ROZ_ASSETS`` (extracted packages, or npm tarballs which are verified and extracted
    into the cache), then the cache ``roz_home()/assets``, then the registry (if ``fetch``).
    """
    cache = assets_dir()
    manifest_p = cache / "MANIFEST.json"
    needed = needed_files()
    env = os.environ.get("ROZ_ASSETS")

    if env:
        src = Path(env).expanduser()
        if not src.is_dir():
            raise DataError(f"ROZ_ASSETS={env} is not a folder", hint=_missing_help())
        roots = {n: src / p.stem for n, p in PACKAGES.items()}
        if all((r / "package").is_dir() for r in roots.values()):
            return Assets(roots, _resolve_all(roots))
        tgzs = {n: src / f"{p.stem}.tgz" for n, p in PACKAGES.items()}
        if not all(t.is_file() for t in tgzs.values()):
            lacking = [p.stem for n, p in PACKAGES.items() if not (roots[n] / "package").is_dir() and not tgzs[n].is_file()]
            raise DataError(f"ROZ_ASSETS={env} lacks {lacking}", hint=_missing_help())
        return _install(tgzs, needed, cache)

    roots = {n: cache / p.stem for n, p in PACKAGES.items()}
    if manifest_p.is_file():
        try:
            man = json.loads(manifest_p.read_text())
        except (OSError, json.JSONDecodeError):
            man = {}
        if man.get("version") == ASSETS_VERSION and man.get("needed") == _needed_digest(needed):
            files = man.get("files", {})
            if all((roots[k.split("/", 1)[0]] / "package" / k.split("/", 1)[1]).is_file() for k in files):
                return Assets(roots, files)

    tgz_dir = cache / "_tarballs"
    tgzs = {n: tgz_dir / f"{p.stem}.tgz" for n, p in PACKAGES.items()}
    for n, p in PACKAGES.items():
        t = tgzs[n]
        if t.is_file():
            try:
                _verify_tarball(p, t)
                continue
            except DataError:
                t.unlink()
        if not fetch:
            raise DataError(f"artwork package {p.stem} is not in {cache}", hint=_missing_help())
        try:
            _download(p, t)
        except DataError:
            raise
        except Exception as e:  # network errors of every kind
            raise DataError(f"cannot download {p.url}: {e}", hint=_missing_help()) from None
    return _install(tgzs, needed, cache)


def _needed_digest(needed: dict[str, list[list[str]]]) -> str:
    return hashlib.sha256(json.dumps(needed, sort_keys=True).encode()).hexdigest()[:16]


def _install(tgzs: dict[str, Path], needed: dict[str, list[list[str]]], cache: Path) -> Assets:
    cache.mkdir(parents=True, exist_ok=True)
    roots = {}
    for n, p in PACKAGES.items():
        _verify_tarball(p, tgzs[n])
        wanted = {rel for alts in needed[n] for rel in alts}
        tmp = Path(tempfile.mkdtemp(prefix=f".{p.stem}.", dir=cache))
        try:
            _extract(p, tgzs[n], wanted, tmp)
            final = cache / p.stem
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        roots[n] = cache / p.stem
    files = _resolve_all(roots)
    man = {
        "version": ASSETS_VERSION,
        "needed": _needed_digest(needed),
        "packages": {n: {"version": p.version, "sha256": p.sha256, "integrity": p.integrity, "license": p.license} for n, p in PACKAGES.items()},
        "files": files,
    }
    tmpm = cache / f".MANIFEST.{os.getpid()}.json"
    tmpm.write_text(json.dumps(man, indent=1, sort_keys=True))
    os.replace(tmpm, cache / "MANIFEST.json")
    return Assets(roots, files)
