//! The `stdin` source: newline-separated records from standard input until it closes. It
//! cannot be replayed, so it reports no positions and cannot be used with checkpoints.

use super::lines::{PartitionStart, decode_pool, read_partition};
use crate::plan::connectors::Decoding;
use crate::runtime::{ConnectorError, Source, SourceContext, SourceEvent};

pub struct StdinSource {
    decoding: Decoding,
}

impl StdinSource {
    pub fn new(decoding: Decoding) -> StdinSource {
        StdinSource { decoding }
    }
}

impl Source for StdinSource {
    fn replayable(&self) -> bool {
        false
    }

    fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), ConnectorError> {
        let mut pool = decode_pool(&ctx, &self.decoding);
        if !ctx.send(SourceEvent::Opened {
            partition: 0,
            name: "stdin".to_string(),
        }) {
            return Ok(());
        }
        let mut input = std::io::stdin().lock();
        let start = PartitionStart {
            line: 1,
            ..PartitionStart::default()
        };
        if read_partition(
            &mut input,
            0,
            &start,
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
