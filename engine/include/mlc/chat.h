/* mlc/chat.h: chat template rendering for the families the server recognises.
 *
 * A GGUF model's tokenizer.chat_template (a Jinja program) is not executed; the family is
 * recognised by distinctive substrings and rendered by fixed C code:
 *   llama3   <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
 *   chatml   <|im_start|>role\ncontent<|im_end|>\n
 *   gemma    <start_of_turn>user\ncontent<end_of_turn>\n (assistant is "model"; the system
 *            message is prepended to the first user turn)
 *   llama2   [INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] assistant </s><s>[INST] ...
 *   mistral  [INST] user [/INST]assistant</s>[INST] ... (system prepended to the first user)
 * The rendered text has no leading BOS: tokenize it with add_special (BOS as the vocabulary
 * says) and parse_special (so the markers become their control tokens). The generation
 * prompt for the assistant's turn is appended. */
#ifndef MLC_CHAT_H
#define MLC_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "mlc/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mlc_chat_template {
    MLC_CHAT_CHATML = 0,
    MLC_CHAT_LLAMA2,
    MLC_CHAT_LLAMA3,
    MLC_CHAT_MISTRAL,
    MLC_CHAT_GEMMA,
} mlc_chat_template;

typedef struct mlc_chat_msg {
    const char *role;    /* "system", "user", "assistant" (others rendered as given) */
    const char *content;
} mlc_chat_msg;

/* "chatml", "llama2", "llama3", "mistral", "gemma". */
const char *mlc_chat_template_name(mlc_chat_template t);
/* By name (as above); false for an unknown name. */
bool mlc_chat_template_from_name(const char *name, mlc_chat_template *out);
/* Recognises a Jinja template text[0..len); false (and *out = CHATML) when none matches. */
bool mlc_chat_template_detect(const char *text, size_t len, mlc_chat_template *out);
struct mlc_gguf;
/* The template of a model file: its tokenizer.chat_template recognised as above; without that
 * key, the family whose turn markers the vocabulary has as tokens (<start_of_turn>: gemma,
 * <|start_header_id|>: llama3, <|im_start|>: chatml), as files converted without a template
 * (such as Gemma 3 270M's Q4_K_M) still expect. False (and *out = CHATML) when neither tells. */
bool mlc_chat_template_from_gguf(const struct mlc_gguf *g, mlc_chat_template *out);
/* Renders msgs[0..n) and the assistant's generation prompt into *out (malloc'd,
 * NUL-terminated; the caller frees it). */
mlc_status mlc_chat_render(mlc_chat_template t, const mlc_chat_msg *msgs, size_t n, char **out,
                           mlc_err *err);

#ifdef __cplusplus
}
#endif
#endif
