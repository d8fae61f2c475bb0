"""What the installed model libraries know: ``roz models list openclip|timm|hf [--pretrained]``.

Read from the libraries themselves (``open_clip.list_pretrained()`` / ``list_models()``,
``timm.list_models(pretrained=...)``) and, for ``hf``, from the local Hugging Face cache
(``huggingface_hub.scan_cache_dir()``: what can be evaluated offline). Each row is a ROZ spec.
"""

from __future__ import annotations

import fnmatch

from roz.errors import ModelError

LIBRARIES = ("openclip", "timm", "hf")


def list_specs(library: str, pretrained: bool = False, pattern: str | None = None) -> list[str]:
    """ROZ model specs the library offers (``pretrained``: only those with published weights)."""
    if library == "openclip":
        import open_clip

        specs = ([f"openclip:{arch}@{tag}" for arch, tag in open_clip.list_pretrained()] if pretrained
                 else [f"openclip:{arch}" for arch in open_clip.list_models()])
    elif library == "timm":
        import timm

        specs = [f"timm:{n}" for n in timm.list_models(pretrained=pretrained)]
    elif library == "hf":
        specs = [f"hf:{repo}" for repo in cached_hf_models()]
    else:
        raise ModelError(f"unknown model library {library!r}", hint=f"one of {', '.join(LIBRARIES)}")
    if pattern:
        specs = [s for s in specs if fnmatch.fnmatch(s.split(":", 1)[1].lower(), pattern.lower())]
    return specs


def cached_hf_models(cache_dir=None) -> list[str]:
    """Model repositories in the local Hugging Face cache (empty if there is no cache)."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        info = scan_cache_dir(cache_dir)
    except CacheNotFound:
        return []
    return sorted(r.repo_id for r in info.repos if r.repo_type == "model")
