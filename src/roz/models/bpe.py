"""Compact open_clip BPE vocabularies: only the merges a set of texts uses, in open_clip's own file format.

open_clip's ``SimpleTokenizer`` reads its vocabulary from a gzipped merges file (``#version: 0.2`` then
one ``a b`` merge per line, in rank order); its vocabulary is the 256 byte symbols, the same 256 with
``</w>``, one token per merge, then ``<start_of_text>`` and ``<end_of_text>``. The shipped file has
48,894 merges (49,408 tokens). A model trained only on a small caption world needs only the merges
its captions use, and its token embedding shrinks accordingly. :func:`build_compact_bpe` writes such
a file; the model still runs through open_clip's code, with ``SimpleTokenizer(bpe_path=...)``
(:func:`load_tokenizer`). The checkpoint's sidecar names the file in its ``tokenizer`` block
(docs/checkpoints.md), and the model's identity records its sha256.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path
from typing import Iterable

from roz.errors import ModelError
from roz.files import sha256_file
from roz.models.checkpoint import atomic_write_bytes

HEADER = "#version: 0.2"
KIND = "open_clip-bpe"
# SimpleTokenizer.__init__ reads lines [1 : 49152-256-2+1] of the file: the header is skipped and at
# most this many merges are used.
MAX_MERGES = 49152 - 256 - 2
N_BYTE_TOKENS = 512  # 256 byte symbols + the same with "</w>" (end of word)


def _source(source: str | os.PathLike | None) -> Path:
    from open_clip.tokenizer import default_bpe

    return Path(source) if source is not None else Path(default_bpe())


def read_merges(path: str | os.PathLike) -> list[tuple[str, str]]:
    """The merges of a BPE file as ``SimpleTokenizer`` reads them (header skipped, at most
    :data:`MAX_MERGES`); ModelError when the file is missing, not gzip/UTF-8, or a line is not ``a b``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"tokenizer file not found: {path}",
                         hint="a compact tokenizer ships beside its checkpoint; copy it there or rebuild both")
    try:
        with gzip.open(path) as f:
            lines = f.read().decode("utf-8").split("\n")
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as e:
        raise ModelError(f"tokenizer file {path} is not a gzipped BPE merges file ({type(e).__name__}: {e})",
                         hint="the file is damaged; restore the one shipped with the checkpoint") from None
    merges = [tuple(line.split()) for line in lines[1:MAX_MERGES + 1]]
    bad = next((i for i, m in enumerate(merges) if len(m) != 2), None)
    if bad is not None:
        raise ModelError(f"tokenizer file {path}: line {bad + 2} is not a merge 'a b': {lines[bad + 1][:60]!r}",
                         hint="the file is damaged; restore the one shipped with the checkpoint")
    return merges  # type: ignore[return-value]


def compact_merges(texts: Iterable[str], source: str | os.PathLike | None = None,
                   clean: str = "lower") -> list[tuple[str, str]]:
    """The merges of ``source`` (default: open_clip's ``bpe_simple_vocab_16e6.txt.gz``) that BPE applies
    when open_clip's ``SimpleTokenizer`` (clean mode ``clean``) encodes ``texts``, in their original rank order.

    Why the compact tokenizer splits every word of ``texts`` exactly as the full one does: BPE applies,
    at each step, the lowest-ranked merge whose pair is present in the word. Every merge the full run
    applies to the word is in the subset, and the subset keeps the original order, so at each step the
    lowest-ranked present pair of the subset is the one the full run chose (any other present pair of
    the subset ranks higher in the full list too); when the full run stops (no present pair is a merge),
    so does the compact one. Same merges, same order: the same token strings. Any other word still
    encodes (into smaller pieces, down to single byte symbols, which are always in the vocabulary),
    never into an unknown token.
    """
    from open_clip.tokenizer import SimpleTokenizer

    texts = [texts] if isinstance(texts, str) else texts  # one caption, not its characters
    source = _source(source)
    merges = read_merges(source)
    full = SimpleTokenizer(bpe_path=str(source), clean=clean)
    if full.vocab_size != N_BYTE_TOKENS + len(merges) + len(full.all_special_ids):
        raise ModelError(f"{source}: two merges (or a merge and a byte symbol) make the same token",
                         hint="use open_clip's BPE file or one written by roz.models.bpe.write_bpe")
    # open_clip's SimpleTokenizer.bpe returns only a word's final pieces; it has no API to report which
    # merges it applied. Every token string is made by exactly one merge (checked above: the
    # vocabulary has no duplicates), so the merges applied to a word are exactly the merge trees of its
    # final pieces: walk each piece down to byte symbols.
    made_by = {"".join(m): m for m in merges}
    used: set[tuple[str, str]] = set()
    for text in texts:
        for word in full.pat.findall(full.clean_fn(text)):  # SimpleTokenizer.encode's cleaning and split
            symbols = "".join(full.byte_encoder[b] for b in word.encode("utf-8"))
            pending = full.bpe(symbols).split(" ")
            while pending:
                merge = made_by.get(pending.pop())
                if merge is not None and merge not in used:
                    used.add(merge)
                    pending.extend(merge)
    return sorted(used, key=full.bpe_ranks.__getitem__)


def write_bpe(merges: Iterable[tuple[str, str]], path: str | os.PathLike) -> Path:
    """Write ``merges`` as a gzipped open_clip BPE file (``#version: 0.2`` then ``a b`` per line),
    byte-for-byte deterministic (gzip mtime 0) and atomically; returns the path."""
    lines = [HEADER]
    for merge in merges:
        if len(merge) != 2 or any(not part or part.split() != [part] for part in merge):
            raise ModelError(f"not a BPE merge: {merge!r}", hint="each merge is two non-empty strings without spaces")
        lines.append(f"{merge[0]} {merge[1]}")
    if len(lines) - 1 > MAX_MERGES:
        raise ModelError(f"{len(lines) - 1} merges: open_clip's SimpleTokenizer reads at most {MAX_MERGES}")
    # no newline after the last merge: SimpleTokenizer would read the empty last line of a short file
    # as one more (empty) merge, i.e. one more vocabulary entry
    path = Path(path)
    atomic_write_bytes(path, gzip.compress("\n".join(lines).encode("utf-8"), compresslevel=9, mtime=0))
    return path


def build_compact_bpe(texts: Iterable[str], path: str | os.PathLike, source: str | os.PathLike | None = None) -> dict:
    """Write the compact BPE file of ``texts`` (:func:`compact_merges`) to ``path``; returns the record
    for the checkpoint sidecar's ``tokenizer`` block: ``kind``, ``bpe`` (the file name, resolved
    beside the weights), ``sha256``, ``n_merges``, ``vocab_size`` (the text tower's ``vocab_size``
    must be at least this) and ``source`` (the BPE file it was cut from and its sha256)."""
    from open_clip.tokenizer import SimpleTokenizer

    source = _source(source)
    merges = compact_merges(texts, source)
    path = write_bpe(merges, path)
    vocab_size = SimpleTokenizer(bpe_path=str(path)).vocab_size
    return {"kind": KIND, "bpe": path.name, "sha256": sha256_file(path), "n_merges": len(merges),
            "vocab_size": vocab_size, "source": {"file": source.name, "sha256": sha256_file(source)}}


def load_tokenizer(arch: str, bpe_path: str | os.PathLike, context_length: int | None = None):
    """open_clip's tokenizer for ``arch`` reading its vocabulary from ``bpe_path``
    (``open_clip.get_tokenizer(arch, bpe_path=...)``); ModelError when the file is missing or damaged
    or ``arch``'s tokenizer is not open_clip's ``SimpleTokenizer``."""
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    merges = read_merges(bpe_path)
    try:
        tok = open_clip.get_tokenizer(arch, context_length=context_length, bpe_path=str(bpe_path))
    except Exception as e:  # noqa: BLE001  (HF / SigLIP tokenizers refuse bpe_path: one readable line)
        raise ModelError(f"open_clip's tokenizer for {arch} does not take a BPE file "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})",
                         hint="a 'tokenizer' BPE file only applies to models with open_clip's SimpleTokenizer") from None
    if not isinstance(tok, SimpleTokenizer) or \
            tok.vocab_size != N_BYTE_TOKENS + len(merges) + len(tok.all_special_ids):
        raise ModelError(f"open_clip's tokenizer for {arch} did not read {bpe_path} "
                         f"({type(tok).__name__}, {getattr(tok, 'vocab_size', '?')} tokens for {len(merges)} merges)",
                         hint="a 'tokenizer' BPE file only applies to models with open_clip's SimpleTokenizer; "
                              "a file with repeated merges is damaged")
    return tok


def sidecar_tokenizer(block: dict, weights: Path, arch: str):
    """(tokenizer, sha256) of a checkpoint sidecar's ``tokenizer`` block: the BPE file it names,
    beside ``weights``, checked against the recorded sha256 and vocabulary size."""
    side = Path(weights).with_suffix(".json")
    name = block.get("bpe") if isinstance(block, dict) else None
    if not isinstance(name, str) or not name or Path(name).name != name or not block.get("sha256"):
        raise ModelError(f"{side}: the 'tokenizer' block must name a BPE file beside the weights and its sha256 "
                         f"(got {block!r})",
                         hint='write {"bpe": FILE_NAME, "sha256": ..., "vocab_size": ...} '
                              "(roz.models.bpe.build_compact_bpe returns it)")
    path = Path(weights).parent / name
    if not path.is_file():
        raise ModelError(f"the tokenizer file {path} named by {side} is missing",
                         hint=f"ship {name} beside the weights (it is part of the checkpoint), or rebuild the checkpoint")
    found = sha256_file(path)
    if found != block["sha256"]:
        raise ModelError(f"tokenizer file {path} does not match the sha256 recorded in {side}: "
                         f"expected {block['sha256']}, found {found}",
                         hint="the file was replaced or damaged: restore the one shipped with the checkpoint, "
                              "or rebuild the checkpoint and its tokenizer together")
    tok = load_tokenizer(arch, path)
    if block.get("vocab_size") is not None and int(block["vocab_size"]) != tok.vocab_size:
        raise ModelError(f"{side} records a {block['vocab_size']}-token tokenizer, but {path} gives {tok.vocab_size}",
                         hint="rebuild the checkpoint and its tokenizer together")
    return tok, found


def check_vocab_fits(tokenizer, model, what: str) -> None:
    """ModelError when ``tokenizer`` can emit ids the model's token embedding has no row for (an
    out-of-range id would crash deep inside torch, or silently wrap on some devices). Models without an
    open_clip token embedding (HF text towers) or tokenizers without ``vocab_size`` are not checked."""
    n_tokens = getattr(tokenizer, "vocab_size", None)
    embedding = getattr(model, "token_embedding", None)
    if embedding is None:
        embedding = getattr(getattr(model, "text", None), "token_embedding", None)
    rows = getattr(embedding, "num_embeddings", None)
    if isinstance(n_tokens, int) and isinstance(rows, int) and n_tokens > rows:
        raise ModelError(f"{what}: the tokenizer has {n_tokens} tokens but the model's text tower embeds only {rows}: "
                         "its ids would index past the token embedding",
                         hint="ship the model's tokenizer beside the weights (sidecar 'tokenizer', docs/checkpoints.md), "
                              "or set the text config's vocab_size to the tokenizer's size")
