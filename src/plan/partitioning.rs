//! Whether a window's groups can be split between processes: several `streamctl run`
//! processes sharing a Kafka consumer group each read some partitions, so a window's rows
//! are right only when every record of a group comes from one partition, i.e. when the
//! window groups by (at least) the fields the topic is keyed by (`partitioned_by`).

use crate::config::{Locator, SourceConfig};
use crate::diag::Diagnostic;

use super::{NodeKind, Plan};

/// Warnings for windows fed by Kafka sources whose partitioning does not match their keys.
pub(super) fn check(plan: &Plan, loc: &Locator<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (w, node) in plan.nodes.iter().enumerate() {
        let NodeKind::Window(window) = &node.kind else {
            continue;
        };
        let Some(input) = node.inputs.first() else {
            continue;
        };
        // Where each group key comes from: (source node, field), when it is a field read
        // unchanged through filters and selects.
        let origins: Vec<Option<(usize, usize)>> = window
            .aggregates
            .keys
            .iter()
            .map(|(_, e)| e.as_column().and_then(|c| trace(plan, input.node, c)))
            .collect();
        for s in kafka_sources_upstream(plan, w) {
            let NodeKind::Source(source) = &plan.nodes[s].kind else {
                continue;
            };
            let SourceConfig::Kafka(k) = &source.config else {
                continue;
            };
            let schema = &plan.nodes[s].outputs[0].schema;
            let group = source_group(source);
            let span = loc.value(&["transforms", &node.name, "group_by"]);
            let source_name = &plan.nodes[s].name;
            match &k.partitioned_by {
                None => out.push(
                    Diagnostic::warning(
                        "kafka-partitioning",
                        format!(
                            "window `{}` groups records of Kafka source `{source_name}`, which does not say how its topic is keyed: several processes sharing group `{group}` produce the same rows as one only if each group's records are in one partition",
                            node.name
                        ),
                    )
                    .at(span)
                    .with_help(format!(
                        "add `partitioned_by: [FIELD]` to source `{source_name}` naming the field(s) the producers key records by (the window must group by them), or run a single process per group"
                    )),
                ),
                Some(fields) => {
                    let missing: Vec<&String> = fields
                        .iter()
                        .filter(|f| {
                            // An unknown field is reported as an error already.
                            schema
                                .index_of(f)
                                .is_some_and(|i| !origins.contains(&Some((s, i))))
                        })
                        .collect();
                    if !missing.is_empty() {
                        let list = missing
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        out.push(
                            Diagnostic::warning(
                                "kafka-partitioning",
                                format!(
                                    "Kafka source `{source_name}` is keyed by {list}, which window `{}` does not group by: with several processes sharing group `{group}`, one group's records are read by different processes and each writes a partial row",
                                    node.name
                                ),
                            )
                            .at(span)
                            .with_help(format!(
                                "group by {list} too, key the topic by the window's keys, or run a single process per group"
                            )),
                        );
                    }
                }
            }
        }
    }
    out
}

fn source_group(source: &super::SourcePlan) -> String {
    match &source.connector {
        super::connectors::SourceConnector::Kafka(k) => k.group_id.clone(),
        _ => String::new(),
    }
}

/// The source field that column `column` of `node`'s main output is, when it passes through
/// filters and selects unchanged.
fn trace(plan: &Plan, node: usize, column: usize) -> Option<(usize, usize)> {
    let n = &plan.nodes[node];
    match &n.kind {
        NodeKind::Source(_) => Some((node, column)),
        NodeKind::Filter(_) => trace(plan, n.inputs.first()?.node, column),
        NodeKind::Select(s) => {
            let from = s.columns.get(column)?.1.as_column()?;
            trace(plan, n.inputs.first()?.node, from)
        }
        _ => None,
    }
}

/// Kafka sources that reach window `w` through stateless stages only (a window further up
/// is checked on its own).
fn kafka_sources_upstream(plan: &Plan, w: usize) -> Vec<usize> {
    let mut found = Vec::new();
    let mut stack: Vec<usize> = plan.nodes[w].inputs.iter().map(|r| r.node).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        match &plan.nodes[n].kind {
            NodeKind::Source(s) if matches!(s.config, SourceConfig::Kafka(_)) => found.push(n),
            NodeKind::Filter(_) | NodeKind::Select(_) | NodeKind::Explode(_) => {
                stack.extend(plan.nodes[n].inputs.iter().map(|r| r.node));
            }
            _ => {}
        }
    }
    found.sort_unstable();
    found
}
