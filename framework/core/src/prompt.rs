//! From a game's structured prompt to the exact text a model reads.
//!
//! Two formats, as in the paper: a base model reads the messages as a plain completion;
//! an aligned model reads them through its own chat template (minijinja, the template
//! shipped in the model folder) with the generation prompt opened. Both end with the
//! game's answer prefix (`{"decision": "`), after which the next token is read.

use descry_abi::types::Prompt;
use minijinja::{context, Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;
use std::io;

/// Separator between messages in the plain format. Plain text has no roles; a blank line
/// is what a document would use between the rules and each turn.
pub const PLAIN_SEPARATOR: &str = "\n\n";

/// How a prompt becomes text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptFormat {
    /// Messages joined by blank lines, then the answer prefix (base models, native).
    Plain,
    /// The model's chat template with the generation prompt, then the answer prefix
    /// (aligned models, native).
    Chat,
}

/// Renders a prompt as plain text: every message's content, separated by
/// [`PLAIN_SEPARATOR`], then the separator and the answer prefix. An assistant message
/// (a past answer in a transcript) is written as it is, so the rendering of round k plus
/// the person's answer is a prefix of the rendering of round k+1.
pub fn render_plain(prompt: &Prompt) -> String {
    let mut text = String::new();
    for message in prompt.messages.iter() {
        text.push_str(message.content.as_str());
        text.push_str(PLAIN_SEPARATOR);
    }
    text.push_str(prompt.answer_prefix.as_str());
    text
}

/// The name a chat template has in minijinja's messages (`... (in chat_template.jinja:3)`):
/// the file it comes from in a model folder.
pub const TEMPLATE_NAME: &str = "chat_template.jinja";

/// Instructions one rendering may execute. A chat template loops over the messages once
/// (tens of instructions a message), so real templates on the longest transcripts use
/// well under a thousandth of this; a template that loops without bound (nested
/// `range(10000)`) stops here after a fraction of a second instead of hanging descry.
pub const TEMPLATE_FUEL: u64 = 10_000_000;

/// Bytes one rendering may write beyond four times the messages' own text: a template
/// writes each message once plus some markup, so more than this is a template that runs
/// away (`"x" * 100000000` in a loop), stopped before it fills memory.
pub const TEMPLATE_OUTPUT_SLACK: usize = 16 << 20;

/// A model's chat template, compiled once.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

/// A chat template that does not compile or render: the reason, in words. The caller
/// (the model folder) adds which file it is.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

impl TemplateError {
    fn from_jinja(e: &JinjaError) -> TemplateError {
        match e.kind() {
            ErrorKind::OutOfFuel => TemplateError(format!(
                "ran out of fuel: the template does too much work (more than {TEMPLATE_FUEL} instructions for \
                 one prompt; a chat template should loop over the messages once)"
            )),
            _ => TemplateError(e.to_string()),
        }
    }
}

/// Writes into a buffer until a limit, then fails, so that a runaway template stops
/// instead of filling memory.
struct BoundedBuffer {
    text: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl io::Write for BoundedBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.text.len() + buf.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("output limit"));
        }
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ChatTemplate {
    /// Compiles a Hugging Face-style Jinja chat template. An empty (or blank) template is
    /// an error: it would render every conversation as nothing, silently.
    pub fn new(
        source: &str,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> Result<Self, TemplateError> {
        if source.trim().is_empty() {
            return Err(TemplateError(
                "the template is empty, so every prompt would lose its messages; restore the file \
                 (run `descry import` again) or remove it and set has_chat_template to false"
                    .into(),
            ));
        }
        let mut env = Environment::new();
        env.set_fuel(Some(TEMPLATE_FUEL));
        // HF templates call Python string methods (`.strip()`, `.startswith()`).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| TemplateError::from_jinja(&e))?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.unwrap_or_default().to_string(),
            eos_token: eos_token.unwrap_or_default().to_string(),
        })
    }

    /// Renders the messages with the generation prompt added, then the answer prefix.
    pub fn render(&self, prompt: &Prompt) -> Result<String, TemplateError> {
        let messages: Vec<_> = prompt
            .messages
            .iter()
            .map(|m| context! { role => m.role.as_str(), content => m.content.as_str() })
            .collect();
        let template =
            self.env.get_template(TEMPLATE_NAME).map_err(|e| TemplateError::from_jinja(&e))?;
        let input: usize = prompt.messages.iter().map(|m| m.content.len()).sum();
        let limit = TEMPLATE_OUTPUT_SLACK + 4 * input;
        let mut out = BoundedBuffer { text: Vec::new(), limit, exceeded: false };
        let rendered = template.render_captured_to(
            context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            },
            &mut out,
        );
        if out.exceeded {
            return Err(TemplateError(format!(
                "the template wrote more than {limit} bytes for one prompt of {input} bytes of messages \
                 (a chat template should write each message once)"
            )));
        }
        rendered.map_err(|e| TemplateError::from_jinja(&e))?;
        // minijinja writes whole UTF-8 strings, so the bytes are valid text.
        let text = String::from_utf8(out.text)
            .map_err(|e| TemplateError(format!("rendered text is not UTF-8: {e}")))?;
        Ok(text + prompt.answer_prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use descry_abi::types::Message;

    fn prompt(turns: &[(&str, &str)]) -> Prompt {
        Prompt {
            messages: turns
                .iter()
                .map(|(r, c)| Message { role: (*r).into(), content: (*c).into() })
                .collect(),
            answer_prefix: "{\"decision\": \"".into(),
        }
    }

    // The ChatML template SmolLM2 ships (tokenizer.chat_template in its GGUF).
    const CHATML: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    #[test]
    fn chat_template_opens_the_assistant_turn_with_the_prefix() {
        let t = ChatTemplate::new(CHATML, None, Some("<|im_end|>")).unwrap();
        let text = t.render(&prompt(&[("system", "Rules."), ("user", "Offer: 60/40.")])).unwrap();
        assert_eq!(
            text,
            "<|im_start|>system\nRules.<|im_end|>\n<|im_start|>user\nOffer: 60/40.<|im_end|>\n<|im_start|>assistant\n{\"decision\": \""
        );
    }

    #[test]
    fn transcripts_are_prefixes_in_both_formats() {
        let first = prompt(&[("system", "Rules."), ("user", "Round 1.")]);
        let second = prompt(&[
            ("system", "Rules."),
            ("user", "Round 1."),
            ("assistant", "{\"decision\": \"accept\"}"),
            ("user", "Round 2."),
        ]);
        let answer = "accept\"}";
        assert!(render_plain(&second).starts_with(&(render_plain(&first) + answer)));
        let t = ChatTemplate::new(CHATML, None, None).unwrap();
        assert!(t.render(&second).unwrap().starts_with(&(t.render(&first).unwrap() + answer)));
    }

    #[test]
    fn template_errors_are_reported() {
        assert!(ChatTemplate::new("{% for %}", None, None).is_err());
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", None, None).unwrap();
        let err = t.render(&prompt(&[("user", "x")])).unwrap_err().to_string();
        assert!(err.contains("no system role"), "{err}");
    }

    #[test]
    fn a_template_that_loops_without_end_runs_out_of_fuel() {
        let source = "{% for a in range(10000) %}{% for b in range(10000) %}{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}";
        let t = ChatTemplate::new(source, None, None).unwrap();
        let started = std::time::Instant::now();
        let err = t.render(&prompt(&[("user", "x")])).unwrap_err().to_string();
        assert!(err.contains("ran out of fuel") && err.contains("too much work"), "{err}");
        assert!(started.elapsed().as_secs() < 10, "took {:?}", started.elapsed());
    }

    #[test]
    fn a_real_template_on_a_long_transcript_is_far_within_the_bounds() {
        // 2,000 turns, far beyond any game's transcript, and long messages.
        let content = "y".repeat(4000);
        let turns: Vec<(&str, &str)> = (0..2000)
            .map(|i| (if i % 2 == 0 { "user" } else { "assistant" }, content.as_str()))
            .collect();
        let t = ChatTemplate::new(CHATML, None, None).unwrap();
        let text = t.render(&prompt(&turns)).unwrap();
        assert!(text.len() > 2000 * 4000);
    }

    #[test]
    fn a_template_that_writes_without_end_is_stopped() {
        let t = ChatTemplate::new(
            "{% for a in range(1000) %}{{ 'x' * 10000000 }}{% endfor %}",
            None,
            None,
        )
        .unwrap();
        let err = t.render(&prompt(&[("user", "x")])).unwrap_err().to_string();
        assert!(err.contains("wrote more than"), "{err}");
    }

    #[test]
    fn an_empty_template_is_refused() {
        for source in ["", "  \n"] {
            let err = ChatTemplate::new(source, None, None).err().expect("refused").to_string();
            assert!(err.contains("empty"), "{err}");
        }
    }
}
