"""Train the demo model from scratch on CPU: ``python build.py train-demo`` runs this module.

A byte-level BPE (Hugging Face ``tokenizers``) and a GPT-2 (``transformers``'
``GPT2LMHeadModel``: Radford et al., "Language Models are Unsupervised Multitask
Learners", 2019) trained with PyTorch; each step is one loss over three batches:

* natural English text: the Python 3.11 documentation sources (Debian's
  ``python3.11-doc``, PSF licence), about 1 file in 20 held out for validation loss;
* generated IOI sentences (Wang et al. 2022) and fact-table sentences (``data.py``), one
  per row, as prompts are asked;
* repeated spans of random tokens, the loss on the repeats only (induction: Olsson et al.
  2022). The run starts on these alone, until the loss on the repeats falls below
  ``--warmup-target``: mixed with text from the start, the model sat on the plateau before
  in-context copying for the whole run. Then ``--steps`` steps on all three, which keep the
  induction head while the rest is learned.

Reproducible from ``--seed``: one ``random.Random`` draws every row in order,
``torch.manual_seed`` the weights, two threads and deterministic kernels. Writes
config.json, model.safetensors (float16), tokenizer.json, the held-out JSON files and
training.json into ``--out``, then measures the saved model with NeuroScope
(``evaluate.py``). This is the only module of the package that imports torch,
tokenizers or transformers.
"""

import argparse
import json
import math
import os
import random
import sys
import time

# Idle OpenMP threads sleep instead of spinning: on two cores shared with other work,
# spinning threads made steps up to 5x slower. Read when torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from . import MODEL_DIR, data  # noqa: E402

EOT = "<|endoftext|>"
IOI_SHARE = 0.5  # of the generated sentences in a synthetic row; the rest are facts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m neuroscope.demo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=MODEL_DIR, help="output folder (default: the packaged demo model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1800,
                        help="optimizer steps on the mixed data, after the induction warm-up (default 1800)")
    parser.add_argument("--text-dir", default=data.PYTHON_DOCS, help="natural text: Python docs sources")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--context", type=int, default=256, help="tokens per row (and n_positions)")
    parser.add_argument("--text-rows", type=int, default=1, help="rows of natural text per step")
    parser.add_argument("--synthetic-rows", type=int, default=32, help="IOI and fact sentences per step")
    parser.add_argument("--induction-tokens", type=int, default=1024, help="repeated random tokens per step")
    parser.add_argument("--induction-warmup", type=int, default=1500,
                        help="at most this many first steps on repeated random spans only")
    parser.add_argument("--warmup-target", type=float, default=1.0,
                        help="the warm-up ends once its smoothed loss on the repeats is below this")
    parser.add_argument("--warmup-lr", type=float, default=3e-3, help="learning rate of the warm-up")
    parser.add_argument("--short-spans", type=int, default=8,
                        help="longest span of the warm-up's first --short-steps steps")
    parser.add_argument("--short-steps", type=int, default=0,
                        help="warm-up steps on short spans before the longest span grows")
    parser.add_argument("--span-growth", type=int, default=10,
                        help="warm-up steps per token added to the longest span after --short-steps")
    parser.add_argument("--min-span", type=int, default=3, help="shortest repeated random span")
    parser.add_argument("--max-span", type=int, default=64, help="longest repeated random span")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--init", type=float, default=0.06, help="initializer_range (std of the weights)")
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=200, help="steps between quick evaluations")
    parser.add_argument("--no-final-eval", action="store_true", help="skip NeuroScope's final evaluation")
    return parser.parse_args(argv)


# -- tokenizer -------------------------------------------------------------------
def synthetic_sentences(rng, count):
    return [data.ioi_train_sentence(rng) if rng.random() < IOI_SHARE else data.fact_train_sentence(rng)
            for _ in range(count)]


def train_tokenizer(documents, vocab_size, seed):
    """Byte-level BPE, GPT-2 style, with <|endoftext|> as id 0, trained on text + generated data."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    synthetic = synthetic_sentences(random.Random(seed), 60_000)
    corpus = [text for _, text in documents] + [" ".join(synthetic[i:i + 50]) for i in range(0, 60_000, 50)]
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def check_single_tokens(tokenizer):
    """Names and answers that are not one token (the evaluation uses their first token)."""
    words = data.NAMES + [answer for _, _, answer in data.fact_list()]
    return sorted({w for w in words if len(tokenizer.encode(" " + w, add_special_tokens=False).ids) != 1})


# -- batches -----------------------------------------------------------------------
class Batches:
    """Each step's three batches, drawn in a fixed order from one seed.

    * text: ``text_rows`` windows of ``context`` tokens of the natural text;
    * synthetic: ``synthetic_rows`` single sentences (IOI or fact), each alone in its row
      as a prompt is at evaluation (``<|endoftext|>`` first), right-padded;
    * induction: ``<|endoftext|>`` + a random span + the span again, one span length per
      step (``min_span``..``max_span``), as many rows as fit in ``induction_tokens``; the
      only batch during the induction warm-up.

    Rows are ``(ids, labels)``; labels are -100 where nothing is to be learned (padding,
    the first copy of a random span).
    """

    def __init__(self, tokenizer, stream, args, seed):
        self.tokenizer, self.stream, self.args = tokenizer, stream, args
        self.rng = random.Random(seed)
        self.eot = tokenizer.token_to_id(EOT)
        self.vocab = tokenizer.get_vocab_size()
        self.counts = {"text": 0, "synthetic": 0, "induction": 0}

    def mixed(self):
        return [batch for batch in (self.text(), self.synthetic(), self.induction()) if batch is not None]

    def text(self):
        n, rows = self.args.context - 1, []
        for _ in range(self.args.text_rows):
            start = self.rng.randrange(len(self.stream) - n)
            rows.append([self.eot] + self.stream[start:start + n])
        self.counts["text"] += len(rows)
        return _tensors(rows, [[-100] + row[1:] for row in rows]) if rows else None

    def synthetic(self):
        if not self.args.synthetic_rows:
            return None
        sentences = synthetic_sentences(self.rng, self.args.synthetic_rows)
        encoded = [[self.eot] + e.ids + [self.eot]
                   for e in self.tokenizer.encode_batch(sentences, add_special_tokens=False)]
        width = max(len(row) for row in encoded)
        ids = [row + [self.eot] * (width - len(row)) for row in encoded]
        labels = [[-100] + row[1:] + [-100] * (width - len(row)) for row in encoded]
        self.counts["synthetic"] += len(ids)
        return _tensors(ids, labels)

    def induction(self, longest=None):
        """Repeated random spans of ``min_span`` to ``longest`` (default ``max_span``) tokens."""
        if not self.args.induction_tokens:
            return None
        span = self.rng.randint(self.args.min_span, longest or self.args.max_span)
        width = 2 * span
        ids, labels = [], []
        for _ in range(max(1, self.args.induction_tokens // (width + 1))):
            row, mask = data.induction_row(self.rng, self.vocab, width, low=1, min_span=span, max_span=span)
            ids.append([self.eot] + row)
            labels.append([-100] + [token if keep else -100 for token, keep in zip(row, mask)])
        self.counts["induction"] += len(ids)
        return _tensors(ids, labels)


def _tensors(ids, labels):
    return torch.tensor(ids), torch.tensor(labels)


def token_stream(tokenizer, documents):
    eot = tokenizer.token_to_id(EOT)
    stream = []
    for encoding in tokenizer.encode_batch([text for _, text in documents], add_special_tokens=False):
        stream += encoding.ids + [eot]
    return stream


# -- evaluation --------------------------------------------------------------------
@torch.no_grad()
def validation_loss(model, stream, context, eot):
    """Mean next-token loss on consecutive windows of the held-out text."""
    model.eval()
    windows = [[eot] + stream[i:i + context - 1] for i in range(0, len(stream) - context, context - 1)]
    total, count = 0.0, 0
    for i in range(0, len(windows), 16):
        batch = torch.tensor(windows[i:i + 16])
        labels = batch.clone()
        labels[:, 0] = -100
        loss = model(input_ids=batch, labels=labels).loss
        total += loss.item() * batch.numel()
        count += batch.numel()
    model.train()
    return total / count, count


@torch.no_grad()
def quick_eval(model, tokenizer):
    """IOI logit difference and fact accuracy on the held-out prompts, one prompt at a time."""
    model.eval()
    eot = tokenizer.token_to_id(EOT)

    def last_logits(prompt):
        ids = [eot] + tokenizer.encode(prompt, add_special_tokens=False).ids
        return model(input_ids=torch.tensor([ids])).logits[0, -1]

    def first(text):
        return tokenizer.encode(text, add_special_tokens=False).ids[0]

    diffs = []
    for item in data.ioi_heldout(count=60):
        logits = last_logits(item["prompt"])
        diffs.append((logits[first(item["answer"])] - logits[first(item["incorrect"])]).item())
    facts = data.facts_heldout()
    hits = sum(int(last_logits(f["prompt"]).argmax().item() == first(f["answer"])) for f in facts)
    rows = [data.induction_row(random.Random(i), tokenizer.get_vocab_size(), 160, low=1) for i in range(4)]
    labels = torch.tensor([[-100] + [t if m else -100 for t, m in zip(ids, mask)] for ids, mask in rows])
    ids = torch.tensor([[eot] + ids for ids, _ in rows])
    repeat_loss = model(input_ids=ids, labels=labels).loss.item()
    model.train()
    return {"ioi_logit_diff": sum(diffs) / len(diffs), "fact_accuracy": hits / len(facts),
            "induction_loss": repeat_loss}


# -- training ----------------------------------------------------------------------
def make_model(args, tokenizer):
    """GPT-2 with a larger initial scale than GPT-2's 0.02 and sinusoidal initial positions.

    Both shorten the plateau before in-context copying appears: a wider init lets
    attention differ between tokens from the start, and sinusoidal positions make
    "attend to the previous token" one linear map for every position (Vaswani et al.,
    "Attention Is All You Need", 2017) instead of one to learn per position. The
    position embeddings stay trainable, as in GPT-2.
    """
    eot = tokenizer.token_to_id(EOT)
    config = GPT2Config(vocab_size=tokenizer.get_vocab_size(), n_positions=args.context, n_embd=args.d_model,
                        n_layer=args.layers, n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=eot, eos_token_id=eot, tie_word_embeddings=True,
                        initializer_range=args.init)
    model = GPT2LMHeadModel(config)
    sinusoidal_positions(model, args.init)
    return model


def sinusoidal_positions(model, rms):
    """Overwrite the position embeddings with Vaswani et al.'s sin/cos table scaled to ``rms``."""
    context, d_model = model.transformer.wpe.weight.shape
    position = torch.arange(context, dtype=torch.float32)[:, None]  # [pos, 1]
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    table = torch.zeros(context, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
    with torch.no_grad():
        model.transformer.wpe.weight.copy_(table * rms * math.sqrt(2))


def make_optimizer(model, lr, weight_decay=0.1):
    """AdamW with weight decay on matrices only (not on biases and layer norms); frozen
    parameters are left out."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim >= 2]
    no_decay = [p for p in trained if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def learning_rate(step, steps, args):
    """Linear warm-up to ``lr``, then a cosine down to a tenth of it at ``steps``."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """The optimizer loop with its log: one loss over each step's supervised tokens."""

    def __init__(self, model, batches, tokenizer, args):
        self.model, self.batches, self.tokenizer, self.args = model, batches, tokenizer, args
        self.optimizer = make_optimizer(model, args.lr)
        self.step, self.tokens, self.log = 0, 0, []
        self.start = time.time()

    def train_step(self, lr, batches):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        parts = [(self.model(input_ids=ids, labels=labels).loss, int((labels[:, 1:] != -100).sum()))
                 for ids, labels in batches]
        loss = sum(part * count for part, count in parts) / sum(count for _, count in parts)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += sum(ids.numel() for ids, _ in batches)
        return loss.item()

    def report(self, phase, loss, lr, total=None):
        elapsed = time.time() - self.start
        if self.step % 10 == 0:
            of = f"/{total}" if total else ""
            print(f"{phase} step {self.step}{of}  loss {loss:.3f}  lr {lr:.2e}  "
                  f"{self.tokens / elapsed:.0f} tok/s  elapsed {elapsed / 60:.1f} min", flush=True)
        if self.step % self.args.eval_every == 0:
            self.evaluate(phase, loss)

    def evaluate(self, phase, loss):
        quick = quick_eval(self.model, self.tokenizer)
        self.log.append({"step": self.step, "phase": phase, "loss": round(loss, 4), **quick})
        print(f"  eval at step {self.step}: IOI logit diff {quick['ioi_logit_diff']:.2f}, fact accuracy "
              f"{quick['fact_accuracy']:.2f}, loss on repeats {quick['induction_loss']:.2f}", flush=True)

    def induction_warmup(self):
        """Repeated random spans alone until the smoothed loss on the repeats falls below
        ``--warmup-target`` with spans of every length (or ``--induction-warmup`` steps): the
        step at which in-context copying appears varies, so the phase ends on it rather than
        on a count.

        The spans start short (at most ``--short-spans`` tokens, for ``--short-steps``
        steps), then the longest grows by one token every ``--span-growth`` steps up to
        ``--max-span``: the wait for an induction head grows quickly with the context length
        (in trials here, spans of up to 64 tokens from the start made no progress in 600
        steps). So far no schedule formed an induction head within the warm-up's steps;
        demo/model/README.md lists what was tried.
        """
        args, smoothed = self.args, None
        while self.step < args.induction_warmup:
            grown = max(0, self.step - args.short_steps) // args.span_growth
            longest = min(args.max_span, args.short_spans + grown)
            lr = args.warmup_lr * min(1.0, (self.step + 1) / args.warmup)
            loss = self.train_step(lr, [self.batches.induction(longest)])
            smoothed = loss if smoothed is None else 0.9 * smoothed + 0.1 * loss
            self.report(f"induction (spans <= {longest})", smoothed, lr)
            if longest == args.max_span and smoothed < args.warmup_target:
                break
        return self.step

    def mixed(self, steps):
        """``steps`` steps over text, IOI/fact sentences and repeated spans together."""
        smoothed, first = None, self.step
        while self.step < first + steps:
            lr = learning_rate(self.step - first + self.args.warmup, steps + self.args.warmup, self.args)
            loss = self.train_step(lr, self.batches.mixed())
            smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
            self.report("mixed", smoothed, lr, first + steps)
        self.evaluate("final", smoothed)
        return self.step - first


def save(model, tokenizer, folder):
    """The Hugging Face layout, weights in float16; drops the generation config we do not use."""
    os.makedirs(folder, exist_ok=True)
    half = GPT2LMHeadModel(model.config)
    half.load_state_dict(model.state_dict())
    half.half().save_pretrained(folder, safe_serialization=True)
    generation = os.path.join(folder, "generation_config.json")
    if os.path.exists(generation):
        os.remove(generation)
    tokenizer.save(os.path.join(folder, "tokenizer.json"))
    return half.float()


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    began = time.time()
    train_docs, heldout_docs = data.natural_text_documents(args.text_dir)
    print(f"natural text: {len(train_docs)} training files, {len(heldout_docs)} held out", flush=True)
    tokenizer = train_tokenizer(train_docs, args.vocab, args.seed)
    print(f"tokenizer: {tokenizer.get_vocab_size()} tokens ({time.time() - began:.0f} s)", flush=True)
    split = check_single_tokens(tokenizer)
    if split:
        print(f"warning: not single tokens (their first token is used): {', '.join(split)}", flush=True)
    stream, heldout_stream = token_stream(tokenizer, train_docs), token_stream(tokenizer, heldout_docs)
    print(f"text tokens: {len(stream)} train, {len(heldout_stream)} held out", flush=True)
    model = make_model(args, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, {params / 1e6:.2f}M "
          f"parameters", flush=True)
    batches = Batches(tokenizer, stream, args, args.seed)
    trainer = Trainer(model, batches, tokenizer, args)
    warmup_steps = trainer.induction_warmup()
    print(f"induction warm-up: {warmup_steps} steps", flush=True)
    mixed_steps = trainer.mixed(args.steps)
    steps, seconds, tokens, log = trainer.step, time.time() - trainer.start, trainer.tokens, trainer.log
    rounded = save(model, tokenizer, args.out)
    eot = tokenizer.token_to_id(EOT)
    val_loss, val_tokens = validation_loss(rounded, heldout_stream, args.context, eot)
    print(f"validation loss on held-out text (float16 weights): {val_loss:.3f} over {val_tokens} tokens",
          flush=True)
    data.write_heldout(args.out, heldout_docs)
    summary = {
        "seed": args.seed, "steps": steps, "induction_warmup_steps": warmup_steps, "mixed_steps": mixed_steps,
        "train_seconds": round(seconds, 1), "train_cpu_seconds": round(time.process_time(), 1),
        "options": {k: v for k, v in vars(args).items() if k not in ("out", "text_dir")},
        "ioi_share_of_synthetic": IOI_SHARE, "rows": batches.counts,
        "tokens_seen": tokens, "parameters": params,
        "text": {"source": "Python 3.11 documentation sources (Debian python3.11-doc), PSF License 2.0",
                 "train_files": len(train_docs), "heldout_files": len(heldout_docs),
                 "train_tokens": len(stream), "heldout_tokens": len(heldout_stream)},
        "validation_loss": round(val_loss, 4), "multi_token_words": split, "eval_log": log,
        "torch": torch.__version__,
    }
    if not args.no_final_eval:
        summary["neuroscope_eval"] = final_eval(args.out)
    summary["total_seconds"] = round(time.time() - began, 1)
    with open(os.path.join(args.out, "training.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")
    print(f"wrote {args.out} in {summary['total_seconds'] / 60:.1f} min", flush=True)
    return 0


def final_eval(folder):
    """The saved (float16) model loaded by NeuroScope and measured as tests/test_demo_model.py does."""
    from .. import TransformerModel
    from .evaluate import evaluate
    model = TransformerModel.from_huggingface(folder)
    result = evaluate(model, folder)
    result.pop("ioi_head_recovery")
    patching = result["ioi_head_patching"]
    print(f"NeuroScope: best induction score {result['induction']['best_score']:.3f} "
          f"{result['induction']['top_heads'][:3]}; IOI logit diff {result['ioi_logit_diff']['mean']:.2f}; "
          f"heads needed for 50% of IOI: {patching['heads_needed']} of {patching['n_heads_total']} "
          f"(joint recovery {[round(r, 2) for r in patching['joint_recovery']]}); "
          f"fact recall {result['fact_recall']['accuracy']:.2f}", flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
