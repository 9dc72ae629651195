//! Submitting a pipeline to a cluster. The Flink SQL script of [`crate::flink`] goes to a
//! Flink through its own command-line client ([`flink_cli`]): against YARN for a self-managed
//! Hadoop cluster, or a local Flink. On Amazon EMR it becomes a step ([`emr`]) that runs the
//! script with Flink's SQL client, or runs streamctl itself.

pub mod emr;
pub mod flink_cli;

/// `s` as one shell word (quoted only when it needs to be).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
