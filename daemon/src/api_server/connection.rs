//! One admitted connection's request loop, the same over a Unix socket and a named pipe:
//! newline-delimited JSON, one response line per request line, until the client closes or
//! subscribes. What answers is behind [`Answers`], so the loop can be driven in tests over a
//! real listener without a data plane.

use super::access::Role;
use anyhow::Result;
use std::future::Future;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use warren_proto::api::{
    ApiError, ErrorCode, Request, RequestEnvelope, Response, ResponseEnvelope, API_VERSION,
};

/// Requests are small; a longer line is a confused or hostile client.
const MAX_REQUEST: u64 = 64 * 1024;

/// What answers an admitted connection's requests: the daemon's state, or a test's stand-in.
pub(crate) trait Answers: Sync {
    fn answer(&self, role: Role, request: Request) -> impl Future<Output = Response> + Send;
    fn subscribe<W: AsyncWrite + Unpin + Send>(
        &self,
        writer: &mut W,
    ) -> impl Future<Output = Result<()>> + Send;
}

/// The request loop of an admitted connection: one line in, one line out, until the client
/// closes (or subscribes, which keeps the connection for status lines).
pub(crate) async fn serve_requests<S, A>(stream: S, role: Role, answers: &A) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Send,
    A: Answers,
{
    let (reader, mut writer) = tokio::io::split(stream);
    let mut lines = BufReader::new(reader.take(MAX_REQUEST)).lines();
    while let Some(line) = lines.next_line().await? {
        let response = match serde_json::from_str::<RequestEnvelope>(&line) {
            Ok(req) if req.v == API_VERSION => {
                if req.request == Request::Subscribe {
                    return answers.subscribe(&mut writer).await;
                }
                answers.answer(role, req.request).await
            }
            Ok(req) => ApiError::new(
                ErrorCode::UnsupportedVersion,
                format!(
                    "API version {} is not supported; this daemon speaks version {API_VERSION}",
                    req.v
                ),
            )
            .into(),
            Err(e) => ApiError::new(ErrorCode::BadRequest, format!("bad request: {e}")).into(),
        };
        write_response(&mut writer, response).await?;
    }
    Ok(())
}

pub(crate) async fn write_response(
    writer: &mut (impl AsyncWrite + Unpin),
    response: Response,
) -> Result<()> {
    let mut out = serde_json::to_vec(&ResponseEnvelope {
        v: API_VERSION,
        response,
    })?;
    out.push(b'\n');
    writer.write_all(&out).await?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Answers every request with the role and the request, so the client sees both.
    pub(crate) struct Echo;

    impl Answers for Echo {
        async fn answer(&self, role: Role, request: Request) -> Response {
            Response::Done {
                message: format!("{role:?} {request:?}"),
            }
        }

        async fn subscribe<W: AsyncWrite + Unpin + Send>(&self, writer: &mut W) -> Result<()> {
            write_response(
                writer,
                Response::Done {
                    message: "subscribed".into(),
                },
            )
            .await
        }
    }

    #[tokio::test]
    async fn a_line_each_way_and_the_version_and_syntax_checked() {
        let (client, server) = tokio::io::duplex(4096);
        let served = tokio::spawn(async move { serve_requests(server, Role::Member, &Echo).await });
        let (r, mut w) = tokio::io::split(client);
        let mut lines = tokio::io::BufReader::new(r).lines();
        let mut ask = async |line: String| {
            w.write_all(format!("{line}\n").as_bytes()).await.unwrap();
            let answer = lines.next_line().await.unwrap().unwrap();
            serde_json::from_str::<ResponseEnvelope>(&answer)
                .unwrap()
                .response
        };
        let status = serde_json::to_string(&warren_proto::api::RequestEnvelope {
            v: API_VERSION,
            request: Request::Status,
        })
        .unwrap();
        assert_eq!(
            ask(status.clone()).await,
            Response::Done {
                message: "Member Status".into()
            }
        );
        let future = status.replacen(
            &format!("\"v\":{API_VERSION}"),
            &format!("\"v\":{}", API_VERSION + 1),
            1,
        );
        assert_ne!(future, status);
        match ask(future).await {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::UnsupportedVersion),
            other => panic!("{other:?}"),
        }
        match ask("{ not json".into()).await {
            Response::Error { code, .. } => assert_eq!(code, ErrorCode::BadRequest),
            other => panic!("{other:?}"),
        }
        let subscribe = status.replace("\"status\"", "\"subscribe\"");
        assert_eq!(
            ask(subscribe).await,
            Response::Done {
                message: "subscribed".into()
            }
        );
        served.await.unwrap().unwrap();
    }
}
