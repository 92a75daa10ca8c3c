//! fnmatch-style key patterns: `*`, `?` and `[...]` (with `!` or `^` to negate, `a-z` ranges),
//! and `\` to escape the next character.

use crate::Error;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A parsed key pattern.
///
/// Unlike path globs, `*` matches any run of characters including `:` and `/`, and there are no
/// `{a,b}` alternates or `**`: the syntax is Python's `fnmatch`.
///
/// ```
/// use mpm_cache::Pattern;
///
/// let p = Pattern::new("agent_profile:engineer:*")?;
/// assert!(p.matches("agent_profile:engineer:42"));
/// assert_eq!(p.literal_prefix(), "agent_profile:engineer:");
/// assert!(p.is_prefix());
/// assert!(Pattern::new("agent:[0-9]?:x")?.matches("agent:7a:x"));
/// # Ok::<(), mpm_cache::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    tokens: Vec<Token>,
    prefix: String,
}

impl Pattern {
    /// Parses `pattern`; an unclosed `[` or a trailing `\` is refused.
    pub fn new(pattern: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidPattern {
            pattern: pattern.to_owned(),
            reason: reason.to_owned(),
        };
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                '?' => tokens.push(Token::Any),
                '\\' => tokens.push(Token::Literal(
                    chars.next().ok_or_else(|| bad("trailing backslash"))?,
                )),
                '[' => {
                    let negated = matches!(chars.peek(), Some('!' | '^'));
                    if negated {
                        chars.next();
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let c = chars.next().ok_or_else(|| bad("unclosed '['"))?;
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            chars.next().ok_or_else(|| bad("trailing backslash"))?
                        } else {
                            c
                        };
                        let mut ahead = chars.clone();
                        if ahead.next() == Some('-') && ahead.peek().is_some_and(|&n| n != ']') {
                            chars.next();
                            let hi = chars.next().ok_or_else(|| bad("unclosed '['"))?;
                            if hi < lo {
                                return Err(bad("a range in '[...]' runs backwards"));
                            }
                            ranges.push((lo, hi));
                        } else {
                            ranges.push((lo, lo));
                        }
                    }
                    tokens.push(Token::Class { negated, ranges });
                }
                c => tokens.push(Token::Literal(c)),
            }
        }
        let prefix = tokens
            .iter()
            .map_while(|t| match t {
                Token::Literal(c) => Some(*c),
                _ => None,
            })
            .collect();
        Ok(Self {
            source: pattern.to_owned(),
            tokens,
            prefix,
        })
    }

    /// A pattern that matches `literal` exactly (its metacharacters escaped).
    pub fn escape(literal: &str) -> String {
        let mut out = String::with_capacity(literal.len());
        for c in literal.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The literal text before the first wildcard; every match starts with it.
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether the pattern is a literal followed by one `*` (so a prefix lookup answers it).
    pub fn is_prefix(&self) -> bool {
        let n = self.prefix.chars().count();
        self.tokens.len() == n + 1 && self.tokens[n] == Token::Star
    }

    /// Whether the pattern has no wildcard at all.
    pub fn is_literal(&self) -> bool {
        self.tokens.iter().all(|t| matches!(t, Token::Literal(_)))
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        // Iterative wildcard matching with one backtrack point (the last `*`): linear in
        // practice, never exponential.
        let (mut t, mut p) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(tok) if Self::one(tok, text[t]) => {
                    t += 1;
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|t| *t == Token::Star)
    }

    fn one(tok: &Token, c: char) -> bool {
        match tok {
            Token::Literal(l) => *l == c,
            Token::Any => true,
            Token::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
            Token::Star => false,
        }
    }
}
