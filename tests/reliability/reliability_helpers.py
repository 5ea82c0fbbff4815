"""A deterministic scripted model behind the backend interface (`positional:first`, `positional:reader`)."""

import re

from w2s.backends import Usage, register_backend


class ScriptedModel:
    """Deterministic: `first` puts 0.7 on the first choice whatever the prompt (position bias);
    `reader` puts 0.9 on the letter of the option containing 'RIGHT'."""

    def __init__(self, mode: str):
        self.mode, self.spec, self.usage = mode, f"positional:{mode}", Usage()

    def generate(self, prompts, max_tokens=128, temperature=0.0, stop=None):
        raise NotImplementedError("scoring only")

    def score_choices(self, prompts, choices):
        out = []
        for prompt in prompts:
            if self.mode == "first":
                probs = [0.7] + [0.3 / (len(choices) - 1)] * (len(choices) - 1)
            else:
                right = re.search(r"^([A-Z])\) .*RIGHT", prompt, re.MULTILINE).group(1)
                probs = [0.9 if c == right else 0.1 / (len(choices) - 1) for c in choices]
            out.append(probs)
        return out


register_backend("positional", ScriptedModel)
