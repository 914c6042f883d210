//! From a game's structured prompt to the exact text a model reads.
//!
//! Two formats, as in the paper: a base model reads the messages as a plain completion;
//! an aligned model reads them through its own chat template (minijinja, the template
//! shipped in the model folder) with the generation prompt opened. Both end with the
//! game's answer prefix (`{"decision": "`), after which the next token is read.

use descry_abi::types::Prompt;
use minijinja::{context, Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;

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

/// A model's chat template, compiled once.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

/// A chat template that does not compile or render.
#[derive(Debug, thiserror::Error)]
#[error("chat template: {0}")]
pub struct TemplateError(String);

impl ChatTemplate {
    /// Compiles a Hugging Face-style Jinja chat template.
    pub fn new(source: &str, bos_token: Option<&str>, eos_token: Option<&str>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // HF templates call Python string methods (`.strip()`, `.startswith()`).
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned("chat", source.to_string()).map_err(|e| TemplateError(e.to_string()))?;
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
        let template = self.env.get_template("chat").map_err(|e| TemplateError(e.to_string()))?;
        let text = template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(|e| TemplateError(e.to_string()))?;
        Ok(text + prompt.answer_prefix.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use descry_abi::types::Message;

    fn prompt(turns: &[(&str, &str)]) -> Prompt {
        Prompt {
            messages: turns.iter().map(|(r, c)| Message { role: (*r).into(), content: (*c).into() }).collect(),
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
}
