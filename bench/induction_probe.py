"""Short training runs that watch for an induction head: the search for the demo model's warm-up.

The demo model (``python build.py train-demo``) must show a head with a TransformerLens
induction score of at least 0.4, and no recipe tried so far forms one within its budget (60
minutes on 2 CPU cores). This script trains the same GPT-2 shape (or a smaller stand-in) on
one kind of repeated-random-token data for a few minutes and prints, every ``--every``
steps: the smoothed training loss, the loss on the repeat of a fresh 40-token span (the
test's sequence), the best induction score over all heads (TransformerLens ``detect_head``:
attention to the token after the previous occurrence, summed over the sequence and divided
by its length, so at most about 0.49 here) and the best previous-token score in layer 0.

Data (``--data``), each row ``<|endoftext|>`` first, the loss on predictable tokens only:

* ``fixed``: a span of ``--min-span``..``--max-span`` tokens (one length per step) and its
  repeat, as train.py's warm-up does;
* ``rep``: the same with one length per row, padded with random tokens;
* ``chunks``: ``--width`` tokens, the second half made of chunks (``--min-span``..
  ``--max-span`` tokens) copied from random places of the first half;
* ``abab``: ``rep`` rows, a ``--abab`` share of them two alternating tokens;
* ``cycle``: ``--width`` tokens, one span of ``--min-span``..``--max-span`` tokens repeated
  through the row.

``--shift`` gives each row a random block of positions (``position_ids``) so absolute
positions cannot be memorised (``--shift-hold`` / ``--shift-grow`` widen that block over
time); ``--hold`` / ``--grow`` widen rows over time. ``--prev-steps`` starts with rows whose
target is the token *before* the current one (a previous-token head forms in ~200 steps);
``--prev-mix`` keeps a share of such rows afterwards, marked by token 1 in place of
``<|endoftext|>`` so the model can tell them apart. Random tokens are drawn from 2 up.

    python bench/induction_probe.py --data chunks --width 16 --min-span 2 --max-span 4 --steps 600

Findings so far are in py/neuroscope/demo/model/README.md ("The induction head").
"""

import argparse
import math
import os
import random
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "py"))

import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from neuroscope.demo.train import make_optimizer  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["fixed", "rep", "chunks", "abab", "cycle"], default="rep")
    parser.add_argument("--min-span", type=int, default=4)
    parser.add_argument("--max-span", type=int, default=24)
    parser.add_argument("--width", type=int, default=128, help="row width of --data chunks")
    parser.add_argument("--abab", type=float, default=0.25, help="share of alternating rows (--data abab)")
    parser.add_argument("--prev-steps", type=int, default=0,
                        help="first steps on rows whose target is the token before the current one")
    parser.add_argument("--prev-mix", type=float, default=0.0,
                        help="after --prev-steps, this share of --data rep rows keeps that target")
    parser.add_argument("--shift", action="store_true", help="random position block per row")
    parser.add_argument("--shift-hold", type=int, default=0, help="steps before --shift starts")
    parser.add_argument("--shift-grow", type=int, default=0,
                        help="steps per position added to the --shift range after --shift-hold")
    parser.add_argument("--hold", type=int, default=0, help="steps before rows start to widen")
    parser.add_argument("--grow", type=int, default=0, help="steps per token of width (or span) after --hold")
    parser.add_argument("--limit", type=int, default=128, help="widest row (or longest span) --grow reaches")
    parser.add_argument("--tokens", type=int, default=1024, help="tokens per step")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--init", type=float, default=0.06)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--untied", action="store_true")
    parser.add_argument("--zero-unembed", action="store_true",
                        help="with --untied: the unembedding starts at zero (uniform first logits)")
    parser.add_argument("--freeze-ln-f", action="store_true", help="the final layer norm is not trained")
    parser.add_argument("--freeze-embeddings", action="store_true",
                        help="token embeddings (and a tied unembedding) stay at their random init")
    parser.add_argument("--learned-positions", action="store_true",
                        help="GPT-2's random init, not sinusoidal")
    parser.add_argument("--attention-only", action="store_true", help="MLPs output zero")
    parser.add_argument("--eval-span", type=int, default=40,
                        help="span of the measured repeat (the test's is 40: 81 positions)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def sinusoidal_positions(model, rms):
    """Overwrite the position embeddings with Vaswani et al.'s sin/cos table scaled to ``rms``."""
    context, d_model = model.transformer.wpe.weight.shape
    position = torch.arange(context, dtype=torch.float32)[:, None]  # [pos, 1]
    frequency = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)
    table = torch.zeros(context, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * frequency), torch.cos(position * frequency)
    with torch.no_grad():
        model.transformer.wpe.weight.copy_(table * rms * math.sqrt(2))


def make_model(args):
    config = GPT2Config(vocab_size=args.vocab, n_positions=args.context, n_embd=args.d_model,
                        n_layer=args.layers, n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0,
                        tie_word_embeddings=not args.untied, initializer_range=args.init, bos_token_id=0,
                        eos_token_id=0, attn_implementation="eager")
    model = GPT2LMHeadModel(config)
    if not args.learned_positions:  # as demo/train.py's make_model
        sinusoidal_positions(model, args.init)
    if args.untied and args.zero_unembed:
        with torch.no_grad():
            model.lm_head.weight.zero_()
    if args.freeze_ln_f:
        model.transformer.ln_f.requires_grad_(False)
    if args.freeze_embeddings:
        model.transformer.wte.requires_grad_(False)
    if args.attention_only:
        for block in model.transformer.h:
            block.mlp.forward = torch.zeros_like
    return model


class Rows:
    """One step's batch: (ids, labels, position_ids or None), labels -100 where unpredictable."""

    def __init__(self, args):
        self.args, self.rng = args, random.Random(args.seed)

    def tokens(self, n):
        return [self.rng.randrange(2, self.args.vocab) for _ in range(n)]

    def grown(self, base, step):
        if not self.args.grow:
            return base
        return min(self.args.limit, base + max(0, step - self.args.hold) // self.args.grow)

    def __call__(self, step):
        args = self.args
        if step <= args.prev_steps:
            rows = [self.prev_row(128) for _ in range(max(1, args.tokens // 128))]
        elif args.data == "chunks":
            width = self.grown(args.width, step)
            longest = max(args.max_span, width // 8)
            rows = [self.chunk_row(width, longest) for _ in range(max(1, args.tokens // width))]
        elif args.data == "cycle":
            width = self.grown(args.width, step)
            rows = [self.cycle_row(width) for _ in range(max(1, args.tokens // width))]
        elif args.data == "fixed":
            span = self.rng.randint(args.min_span, self.grown(args.max_span, step))
            rows = []
            for _ in range(max(1, args.tokens // (2 * span + 1))):
                s = self.tokens(span)
                rows.append(([0] + s + s, [-100] * (span + 2) + s[1:]))
        else:
            longest = self.grown(args.max_span, step)
            width = 2 * longest + 1
            rows = [self.rep_row(width, longest) for _ in range(max(1, args.tokens // width))]
        ids = torch.tensor([row for row, _ in rows])
        labels = torch.tensor([label for _, label in rows])
        positions = None
        if args.shift:
            room = args.context - ids.shape[1] + 1
            if args.shift_grow:
                room = max(1, min(room, 1 + max(0, step - args.shift_hold) // args.shift_grow))
            positions = torch.stack([torch.arange(ids.shape[1]) + self.rng.randrange(0, room) for _ in rows])
        return ids, labels, positions

    def prev_row(self, width):
        """The target is the token before the current one; such rows start with token 1, not 0."""
        row = [1] + self.tokens(width - 1)
        return row, [-100, -100, -100] + row[1:-2]

    def rep_row(self, width, longest):
        if self.args.prev_mix and self.rng.random() < self.args.prev_mix:
            return self.prev_row(width)
        if self.args.data == "abab" and self.rng.random() < self.args.abab:
            row = (self.tokens(2) * width)[:width - 1]
            return [0] + row, [-100, -100, -100] + row[2:]
        n = self.rng.randint(self.args.min_span, longest)
        s, pad = self.tokens(n), self.tokens(width - 1 - 2 * n)
        return [0] + s + s + pad, [-100] * (n + 2) + s[1:] + [-100] * len(pad)

    def cycle_row(self, width):
        n = self.rng.randint(self.args.min_span, self.args.max_span)
        s = self.tokens(n)
        row = (s * (width // n + 1))[:width - 1]
        # the first token of the second cycle follows s[-1], which has not been seen before
        return [0] + row, [-100] * (n + 2) + row[n + 1:]

    def chunk_row(self, width, longest):
        half = width // 2
        first, second, labels = self.tokens(half), [], []
        while len(second) < width - half:
            n = self.rng.randint(self.args.min_span, min(longest, half - 1))
            start = self.rng.randrange(0, half - n)
            second += first[start:start + n]
            labels += [-100] + first[start + 1:start + n]
        return [0] + first + second[:width - half], [-100] * (half + 1) + labels[:width - half]


@torch.no_grad()
def measure(model, args):
    rng = random.Random(99)
    span = args.eval_span
    spans = [[rng.randrange(1, args.vocab) for _ in range(span)] for _ in range(8)]
    ids = torch.tensor([[0] + s + s for s in spans])
    labels = torch.tensor([[-100] * (span + 2) + s[1:] for s in spans])
    out = model(input_ids=ids, labels=labels, output_attentions=True)
    length = ids.shape[1]
    query = torch.arange(span + 1, length)
    induction = max(a[:, :, query, query - span + 1].sum(-1).mean(0).max().item() / length
                    for a in out.attentions)
    query = torch.arange(1, length)
    previous = out.attentions[0][:, :, query, query - 1].mean(-1).mean(0).max().item()
    return out.loss.item(), induction, previous


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = make_model(args)
    optimizer = make_optimizer(model, args.lr, args.weight_decay)
    rows, smoothed, began = Rows(args), None, time.time()
    for step in range(1, args.steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, step / 30)
        ids, labels, positions = rows(step)
        loss = model(input_ids=ids, labels=labels, position_ids=positions).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        smoothed = loss.item() if smoothed is None else 0.9 * smoothed + 0.1 * loss.item()
        if step % args.every == 0:
            repeat_loss, induction, previous = measure(model, args)
            gain = model.transformer.ln_f.weight.abs().mean().item()
            embedding = model.transformer.wte.weight.pow(2).mean().sqrt().item()
            print(f"step {step}  width {ids.shape[1]}  loss {smoothed:.3f}  repeat loss {repeat_loss:.3f}  "
                  f"induction {induction:.3f}  previous-token {previous:.2f}  ln_f gain {gain:.2f}  "
                  f"embedding rms {embedding:.4f}  {time.time() - began:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
