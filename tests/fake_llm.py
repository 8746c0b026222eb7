"""A stand-in model for pipeline tests (no real model; everything else, the sandbox included, is
real). Imported by the tests as ``from fake_llm import FakeLLM``."""
from common.sampling import Completion


class FakeLLM:
    """Chat template = role tags; each completion's text (or ``(text, mean log-prob)``) comes
    from ``respond(prompt, params, sample_index)``. ``respond=None``: the model must not be
    called (e.g. a resumed run with nothing left to generate). Every call is kept in ``calls``
    as (desc, prompts, params)."""

    def __init__(self, respond=None):
        self.respond = respond
        self.calls = []

    def chat_prompt(self, messages, prefill=""):
        return "".join(f"<|{m['role']}|>{m['content']}\n" for m in messages) + "<|assistant|>" + prefill

    def generate(self, prompts, params, on_done=None, progress=True, desc="", seed_keys=None):
        if self.respond is None:
            raise AssertionError(f"the model was called although nothing was left to generate ({desc})")
        self.calls.append((desc, list(prompts), params))
        out = []
        for i, p in enumerate(prompts):
            comps = []
            for si in range(params.n):
                got = self.respond(p, params, si)
                text, lp = got if isinstance(got, tuple) else (got, -0.5)
                comps.append(Completion(text, [1, 2, 3, 4], "stop", [lp] * 4 if params.logprobs else None))
            if on_done:
                on_done(i, comps)
            out.append(comps)
        return out
