//! The service in front of the App on both public listeners. A proxy calls `/verify` on every
//! request it forwards, so that one path is answered here from the bare request, without
//! actix-web's routing, request object and extractors (about 1 µs, some 5% of the CPU a
//! check costs behind nginx in `scripts/bench.sh`). Every other request, and a `/verify`
//! spelled with escapes, goes to the App.
//!
//! Here too, what actix-web's timeouts leave open to a slow client is closed:
//! - its `client_request_timeout` (`listen.header_timeout`) covers only the first request
//!   head of a connection. So a connection that is not a `proxy.trusted` peer's on the plain
//!   listener (every connection on the mTLS listener) carries one request: the answer says
//!   `Connection: close`. A trusted proxy keeps its connections alive; it sends whole heads.
//! - nothing times a request body: a body must arrive within `listen.header_timeout` of its
//!   head, or the request fails and the connection is closed.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::BoxBody;
use actix_http::error::PayloadError;
use actix_http::{ConnectionType, Payload, Request};
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory, ServiceResponse};
use actix_web::{web, Error};
use bytes::Bytes;
use futures_util::future::{Either, LocalBoxFuture, MapOk, Ready, TryFutureExt};
use futures_util::Stream;

use super::extract::Connection;
use super::{verify, AppState, Live};

/// Wraps the App's factory (`App::into_factory()`).
pub struct Front<A> {
    app: A,
    live: web::Data<Live>,
}

impl<A> Front<A> {
    pub fn new(app: A, live: web::Data<Live>) -> Self {
        Self { app, live }
    }
}

type AppResponse = ServiceResponse<BoxBody>;

impl<A> ServiceFactory<Request> for Front<A>
where
    A: ServiceFactory<
        Request,
        Config = AppConfig,
        Response = AppResponse,
        Error = Error,
        InitError = (),
    >,
    A::Future: 'static,
    A::Service: 'static,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    type Config = AppConfig;
    type Service = FrontService<A::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, config: AppConfig) -> Self::Future {
        let app = self.app.new_service(config);
        let live = self.live.clone();
        Box::pin(async move {
            Ok(FrontService {
                app: app.await?,
                live,
            })
        })
    }
}

pub struct FrontService<S> {
    app: S,
    live: web::Data<Live>,
}

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = AppResponse, Error = Error>,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    #[allow(clippy::type_complexity)]
    type Future = Either<
        Ready<Result<Response<BoxBody>, Error>>,
        MapOk<S::Future, fn(AppResponse) -> Response<BoxBody>>,
    >;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        let state = self.live.current();
        let keep_alive = from_trusted_proxy(&req, &state);
        if req.path() == "/verify" {
            let mut res: Response<BoxBody> = verify::answer(&req, &state).into();
            if !keep_alive {
                res.head_mut().set_connection_type(ConnectionType::Close);
            }
            return Either::Left(futures_util::future::ok(res));
        }
        let req = with_body_deadline(req, state.config.listen.header_timeout);
        let respond: fn(AppResponse) -> Response<BoxBody> =
            if keep_alive { Into::into } else { closing };
        Either::Right(self.app.call(req).map_ok(respond))
    }
}

/// Only a `proxy.trusted` peer on the plain listener keeps its connection for more requests.
fn from_trusted_proxy(req: &Request, state: &AppState) -> bool {
    !matches!(req.conn_data::<Connection>(), Some(Connection::Mtls { .. }))
        && req
            .peer_addr()
            .is_some_and(|peer| state.config.proxy.is_trusted(peer.ip()))
}

fn closing(res: AppResponse) -> Response<BoxBody> {
    let mut res: Response<BoxBody> = res.into();
    res.head_mut().set_connection_type(ConnectionType::Close);
    res
}

/// The request with its body (if it has one) bounded in time.
fn with_body_deadline(req: Request, limit: Duration) -> Request {
    let (req, payload) = req.replace_payload(Payload::None);
    if matches!(payload, Payload::None) {
        return req;
    }
    let timed: actix_http::BoxedPayloadStream = Box::pin(BodyDeadline {
        body: payload,
        timer: Box::pin(actix_web::rt::time::sleep(limit)),
    });
    req.replace_payload(Payload::Stream { payload: timed }).0
}

/// A request body that fails once its time is up (and the connection with it).
struct BodyDeadline {
    body: Payload,
    timer: Pin<Box<actix_web::rt::time::Sleep>>,
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Poll::Ready(item) = Pin::new(&mut this.body).poll_next(cx) {
            return Poll::Ready(item);
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive within listen.header_timeout",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}
