//! Moving messages from the delivery dead-letter queue back to the delivery queue, as SQS's own DLQ
//! redrive (`StartMessageMoveTask`) does: body, attributes and tenant (`MessageGroupId`) as they were. The deliverer marks what
//! it copies to the DLQ with a `reason` attribute; such a message coming back re-opens its finally
//! failed delivery (see `deliver`), so a redriven delivery is attempted again from attempt 1.

use std::collections::HashSet;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry};

#[derive(Debug, thiserror::Error)]
#[error("SQS: {0}")]
pub struct RedriveError(String);

fn sqs_err<E: std::error::Error + 'static>(e: E) -> RedriveError {
    RedriveError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
}

/// Moves up to `max` messages from `from` to `to`, ten at a time; a message leaves `from` only once
/// `to` has it. Returns how many moved.
pub async fn move_dead_letters(sqs: &aws_sdk_sqs::Client, from: &str, to: &str, max: usize) -> Result<usize, RedriveError> {
    let mut moved = 0;
    while moved < max {
        let got = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(10.min(max - moved) as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .send()
            .await
            .map_err(sqs_err)?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body.clone().unwrap_or_default())
                    .set_message_attributes(m.message_attributes.clone())
                    .set_message_group_id(m.attributes.as_ref().and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId)).cloned())
                    .build()
                    .map_err(sqs_err)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let sent = sqs.send_message_batch().queue_url(to).set_entries(Some(entries)).send().await.map_err(sqs_err)?;
        let ok: HashSet<String> = sent.successful.into_iter().map(|s| s.id).collect();
        let deletes = messages
            .iter()
            .enumerate()
            .filter(|(i, _)| ok.contains(&i.to_string()))
            .filter_map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(i.to_string()).receipt_handle(m.receipt_handle.clone()?).build().ok())
            .collect::<Vec<_>>();
        if !deletes.is_empty() {
            sqs.delete_message_batch().queue_url(from).set_entries(Some(deletes)).send().await.map_err(sqs_err)?;
        }
        moved += ok.len();
        if ok.len() < messages.len() {
            return Err(RedriveError(format!("{} of {} messages could not be sent back", messages.len() - ok.len(), messages.len())));
        }
    }
    Ok(moved)
}
