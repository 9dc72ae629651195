//! The `stdin` source: newline-separated records from standard input until it closes.

use super::lines::{DecodePool, read_partition};
use super::{Source, SourceContext, SourceEvent};
use crate::config::source::Decoding;

pub struct StdinSource {
    decoding: Decoding,
}

impl StdinSource {
    pub fn new(decoding: Decoding) -> StdinSource {
        StdinSource { decoding }
    }
}

impl Source for StdinSource {
    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), String> {
        let mut pool = DecodePool::new(&ctx, &self.decoding);
        if !ctx.send(SourceEvent::Opened {
            partition: 0,
            name: "stdin".to_string(),
        }) {
            return Ok(());
        }
        let mut input = std::io::stdin().lock();
        if read_partition(
            &mut input,
            0,
            &ctx,
            &mut pool,
            &self.decoding,
            "standard input",
            true,
        )? {
            ctx.send(SourceEvent::Closed { partition: 0 });
            ctx.send(SourceEvent::Finished);
        }
        Ok(())
    }
}
