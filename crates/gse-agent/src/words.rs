//! Splitting a `Parameters` string into arguments the way a POSIX shell splits words, without
//! running a shell: no variables, globs, or command substitution.

/// Splits `input` into words: blanks separate words; `'...'` keeps everything literally;
/// `"..."` keeps everything except that a backslash escapes `"`, `\`, `$`, `` ` `` and a
/// newline; outside quotes a backslash keeps the next character literally (and a
/// backslash-newline is removed). Adjacent quoted and unquoted parts join into one word, and
/// `''` or `""` alone is an empty word.
pub fn split_words(input: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word has started (possibly empty, as with `""`).
    let mut in_word = false;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single quote in parameters".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double quote in parameters".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double quote in parameters".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => {
                    in_word = true;
                    word.push(c);
                }
                None => return Err("parameters end with a lone backslash".into()),
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split_words;

    fn ok(input: &str) -> Vec<String> {
        split_words(input).expect("splits")
    }

    #[test]
    fn blanks_separate_words() {
        assert_eq!(ok(""), Vec::<String>::new());
        assert_eq!(ok("   \t "), Vec::<String>::new());
        assert_eq!(ok("--port 7777  -v"), ["--port", "7777", "-v"]);
        assert_eq!(ok("  a\tb\nc  "), ["a", "b", "c"]);
    }

    #[test]
    fn single_quotes_are_literal() {
        assert_eq!(ok("'hello world' x"), ["hello world", "x"]);
        assert_eq!(ok(r"'a\b $HOME'"), [r"a\b $HOME"]);
        assert_eq!(ok("''"), [""]);
    }

    #[test]
    fn double_quotes_allow_some_escapes() {
        assert_eq!(ok(r#""say \"hi\"" next"#), [r#"say "hi""#, "next"]);
        assert_eq!(ok(r#""a\\b" "c\d" "\$x""#), [r"a\b", r"c\d", "$x"]);
        assert_eq!(ok(r#""""#), [""]);
        assert_eq!(ok("\"it's\""), ["it's"]);
    }

    #[test]
    fn parts_join_into_one_word() {
        assert_eq!(ok(r#"--name="my server"'!'"#), ["--name=my server!"]);
        assert_eq!(ok(r"a\ b c"), ["a b", "c"]);
        assert_eq!(ok("a\\\nb"), ["ab"]);
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        assert!(split_words("'abc").is_err());
        assert!(split_words("\"abc").is_err());
        assert!(split_words("\"abc\\").is_err());
        assert!(split_words("abc\\").is_err());
    }
}
