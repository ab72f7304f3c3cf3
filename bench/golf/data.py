"""The corpus, its tokenizer and its splits.

The text is Debian's `fortunes` package, pinned (version and SHA-256 of the
.deb): 2.2 MB of plain English in 40-odd files (quotations, literature,
jokes, definitions, computing lore), one entry per `%`-separated fortune.
Why it: every Debian machine gets the same bytes with `apt-get download`
(no root needed, nothing is installed), it is prose rather than code or a
word list, and it is varied enough that a small model learns real structure
in minutes. PyPI ships no plain-text corpus of this size (checked:
tinyshakespeare, wikitext, tinystories and the like are not packages).

Splits: every tenth fortune (entry index % 10 == 0, in file-name order) is
validation, the rest training: whole entries, so no validation text is seen
in training. The tokenizer is a byte-level BPE of 1,024 tokens (the
challenge's SP1024 size) trained on the training split with HuggingFace
`tokenizers` (single-threaded, so the merges are deterministic); byte-level
means decode(encode(text)) == text, so val_bpb's byte count is exactly the
validation text's UTF-8 length.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "fortunes"
VERSION = "1:1.99.1-7.3"
DEB_SHA256 = "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5"
TEXT_DIR = "usr/share/games/fortunes"
VAL_EVERY = 10
SEPARATOR = "\n%\n"


@dataclasses.dataclass
class Corpus:
    train_ids: np.ndarray  # uint16 token ids
    val_ids: np.ndarray
    val_bytes: int  # UTF-8 bytes of the validation text
    vocab: int
    digest: str  # identifies text + tokenizer, for the checkpoint cache
    tokenizer: object
    train_text_bytes: int

    def unigram_val_bpb(self) -> float:
        """Bits per byte of a unigram model fitted on the training tokens
        (add-one smoothing): the floor any trained model must clear."""
        counts = np.bincount(self.train_ids, minlength=self.vocab).astype(np.float64) + 1.0
        logp = np.log2(counts / counts.sum())
        return float(-logp[self.val_ids].sum() / self.val_bytes)


class CorpusError(RuntimeError):
    pass


def _fetch_deb(cache: Path) -> Path:
    deb = cache / f"{PACKAGE}_{VERSION.replace(':', '%3a')}_all.deb"
    if deb.exists() and _sha256(deb) == DEB_SHA256:
        return deb
    override = os.environ.get("PGQ_GOLF_DEB")
    if override:
        shutil.copyfile(override, deb)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["apt-get", "download", f"{PACKAGE}={VERSION}"]
            result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if result.returncode != 0 and os.geteuid() == 0:
                # A fresh machine's package lists may not be there yet.
                subprocess.run(["apt-get", "update", "-q"], capture_output=True)
                result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
            if result.returncode != 0:
                raise CorpusError(
                    f"`{' '.join(cmd)}` failed: {result.stderr.strip()}\n"
                    "Run `apt-get update` (as root) and retry, or set PGQ_GOLF_DEB to a "
                    f"copy of the .deb (SHA-256 {DEB_SHA256})."
                )
            (got,) = Path(tmp).glob("*.deb")
            shutil.move(got, deb)
    digest = _sha256(deb)
    if digest != DEB_SHA256:
        deb.unlink()
        raise CorpusError(f"{PACKAGE} {VERSION}: SHA-256 {digest}, expected {DEB_SHA256}")
    return deb


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entries(cache: Path) -> list[str]:
    """Every fortune of the package, in file-name order (symbolic links and
    the .dat indexes left out)."""
    text_dir = cache / "fortunes" / TEXT_DIR
    if not text_dir.is_dir():
        deb = _fetch_deb(cache)
        out = cache / "fortunes"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(out)], check=True)
    found = []
    for path in sorted(text_dir.iterdir()):
        if path.is_symlink() or not path.is_file() or path.suffix in (".dat", ".u8"):
            continue
        text = path.read_bytes().decode("utf-8")
        found += [e.strip("\n") for e in ("\n" + text).split(SEPARATOR) if e.strip()]
    return found


def load(cache: Path, vocab: int = 1024) -> Corpus:
    cache.mkdir(parents=True, exist_ok=True)
    all_entries = entries(cache)
    train = [e for i, e in enumerate(all_entries) if i % VAL_EVERY]
    val = [e for i, e in enumerate(all_entries) if i % VAL_EVERY == 0]
    train_text, val_text = SEPARATOR.join(train), SEPARATOR.join(val)

    text_digest = hashlib.sha256(f"{train_text}\0{val_text}\0{vocab}".encode()).hexdigest()
    tok_path = cache / f"tokenizer-{text_digest[:16]}.json"
    tokenizer = _tokenizer(tok_path, train, vocab)
    ids_path = cache / f"ids-{text_digest[:16]}.npz"
    if ids_path.exists():
        saved = np.load(ids_path)
        train_ids, val_ids = saved["train"], saved["val"]
    else:
        train_ids = np.array(tokenizer.encode(train_text).ids, dtype=np.uint16)
        val_ids = np.array(tokenizer.encode(val_text).ids, dtype=np.uint16)
        if tokenizer.decode(val_ids.tolist()) != val_text:
            raise CorpusError("the tokenizer does not round-trip the validation text")
        np.savez(ids_path, train=train_ids, val=val_ids)
    digest = hashlib.sha256(tok_path.read_bytes() + text_digest.encode()).hexdigest()
    return Corpus(
        train_ids=train_ids,
        val_ids=val_ids,
        val_bytes=len(val_text.encode()),
        vocab=vocab,
        digest=digest,
        tokenizer=tokenizer,
        train_text_bytes=len(train_text.encode()),
    )


def _tokenizer(path: Path, train: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if path.exists():
        return Tokenizer.from_file(str(path))
    # One thread: the trainer's merge order is then a pure function of the text.
    os.environ["RAYON_NUM_THREADS"] = "1"
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(train, trainer)
    tokenizer.save(str(path))
    return tokenizer
