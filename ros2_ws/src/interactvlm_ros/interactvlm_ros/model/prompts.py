"""The method's prompt: LLaVA-v1 conversation template, questions per mode, answer templates, tokenisation with
the ``<image>`` placeholder (id -200) that the model replaces by the projected CLIP patch embeddings.

Assembled inference prompt (reference §1.2)::

    <system> USER: <im_start><image><im_end>\\n<question> ASSISTANT:
"""

from __future__ import annotations

from interactvlm_ros.model.configuration import PromptConfig
from interactvlm_ros.model.tokenizer import IM_END, IM_START, IMAGE_PLACEHOLDER, PromptTokenizer, sanitize_object_name

MODES = ("human", "object", "image2d")

# Training answer templates ({body_parts}/{affordance}/{class_name} filled from data; [SEG] = contact token).
ANSWER_TEMPLATES = (
    "The contacting body parts are {body_parts}, and the contact region is [SEG].",
    "It is [SEG].",
    "Sure, the human contact region is [SEG].",
    "Sure, [SEG].",
    "The affordance type is {affordance}, and the contact region is [SEG].",
    "The affordance type is {affordance} with {class_name}, and the contact region is [SEG].",
)


def question(prompts: PromptConfig, mode: str, object_name: str) -> str:
    """The question for ``mode`` ("human", "object", "image2d") about a sanitised ``object_name``."""
    template = {"human": prompts.human_question, "object": prompts.object_question,
                "image2d": prompts.image2d_question}.get(mode)
    if template is None:
        raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
    return template.replace("{object}", sanitize_object_name(object_name, prompts.max_object_chars,
                                                             prompts.keep_underscores))


def conversation(prompts: PromptConfig, question_text: str, answer: str = "") -> str:
    """LLaVA-v1 conversation text: system, user turn with the image, the assistant turn (open or teacher-forced)."""
    text = f"{prompts.system} USER: {IM_START}{IMAGE_PLACEHOLDER}{IM_END}\n{question_text} ASSISTANT:"
    return text + (f" {answer}" if answer else "")


def encode_with_image(tokenizer: PromptTokenizer, text: str, image_id: int = -200) -> list[int]:
    """BOS + token ids of ``text`` with each ``<image>`` replaced by ``image_id`` (LLaVA tokenizer_image_token)."""
    ids = [tokenizer.bos_id]
    for i, chunk in enumerate(text.split(IMAGE_PLACEHOLDER)):
        if i:
            ids.append(image_id)
        ids.extend(tokenizer.encode(chunk))
    return ids


def teacher_forced_prefix(answer_template: str, contact_token: str = "[SEG]") -> str:
    """The part of a fixed answer before the contact token (its last position predicts the token)."""
    return answer_template.split(contact_token)[0].rstrip()
