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
//! - a body nobody reads: actix-http goes on reading a chunked body whose reader was dropped,
//!   with no timer, so one silent `Transfer-Encoding: chunked` request would hold its
//!   connection (and a slot of `listen.max_connections`) for ever. Every request's body reader
//!   is kept alive until its answer is written ([`BodyGuard`]); actix-http then closes a
//!   connection whose body was left unread instead.

use std::cell::RefCell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::error::PayloadError;
use actix_http::{ConnectionType, Payload, Request};
use actix_web::dev::{AppConfig, Response, Service, ServiceFactory, ServiceResponse};
use actix_web::{web, Error};
use bytes::Bytes;
use futures_util::future::{Either, LocalBoxFuture, Ready, TryFutureExt};
use futures_util::Stream;

use super::{verify, AppState, Live};
use crate::tls::Connection;

/// Wraps the App's factory (`App::into_factory()`).
pub struct Front<A> {
    app: A,
    live: web::Data<Live>,
    /// On the metrics listener: no `/verify`, and one request per connection for everyone.
    operator: bool,
}

impl<A> Front<A> {
    /// In front of the public listeners (http and mTLS).
    pub fn new(app: A, live: web::Data<Live>) -> Self {
        Self {
            app,
            live,
            operator: false,
        }
    }

    /// In front of the metrics listener: the same guards on bodies, one request per
    /// connection (a handful of idle connections must not blind monitoring).
    pub fn operator(app: A, live: web::Data<Live>) -> Self {
        Self {
            app,
            live,
            operator: true,
        }
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
    <A::Service as Service<Request>>::Future: 'static,
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
        let operator = self.operator;
        Box::pin(async move {
            Ok(FrontService {
                app: app.await?,
                live,
                operator,
            })
        })
    }
}

pub struct FrontService<S> {
    app: S,
    live: web::Data<Live>,
    operator: bool,
}

impl<S> Service<Request> for FrontService<S>
where
    S: Service<Request, Response = AppResponse, Error = Error>,
    S::Future: 'static,
{
    type Response = Response<BoxBody>;
    type Error = Error;
    type Future = Either<
        Ready<Result<Response<BoxBody>, Error>>,
        LocalBoxFuture<'static, Result<Response<BoxBody>, Error>>,
    >;

    actix_web::dev::forward_ready!(app);

    fn call(&self, req: Request) -> Self::Future {
        let state = self.live.current();
        let keep_alive = !self.operator && from_trusted_proxy(&req, &state);
        if !self.operator && req.path() == "/verify" {
            // A check has no body (nginx, Traefik and Caddy send none); one sent anyway is
            // never read, and its reader stays alive until the answer is written.
            let (req, body) = req.replace_payload(Payload::None);
            let mut res: Response<BoxBody> = verify::answer(&req, &state).into();
            if !keep_alive {
                res.head_mut().set_connection_type(ConnectionType::Close);
            }
            if !matches!(body, Payload::None) {
                res = guarded(
                    res,
                    BodyGuard {
                        _reader: Rc::new(RefCell::new(body)),
                    },
                );
            }
            return Either::Left(futures_util::future::ok(res));
        }
        let (req, guard) = with_body_deadline(req, state.config.listen.header_timeout);
        Either::Right(Box::pin(self.app.call(req).map_ok(move |res| {
            let mut res: Response<BoxBody> = res.into();
            if !keep_alive {
                res.head_mut().set_connection_type(ConnectionType::Close);
            }
            match guard {
                Some(guard) => guarded(res, guard),
                None => res,
            }
        })))
    }
}

/// A request's body reader, kept in the answer's body until actix-http has written all of it
/// (it decides then whether the request's body was left unread): a body left unread then
/// closes the connection (see the module docs).
struct BodyGuard {
    _reader: Rc<RefCell<Payload>>,
}

/// Only a `proxy.trusted` peer on the plain listener keeps its connection for more requests.
fn from_trusted_proxy(req: &Request, state: &AppState) -> bool {
    !matches!(req.conn_data::<Connection>(), Some(Connection::Mtls { .. }))
        && req
            .peer_addr()
            .is_some_and(|peer| state.config.proxy.is_trusted(peer.ip()))
}

/// The answer, its body carrying `guard` to its end.
fn guarded(res: Response<BoxBody>, guard: BodyGuard) -> Response<BoxBody> {
    res.map_body(|_, body| {
        Guarded {
            body,
            _guard: guard,
        }
        .boxed()
    })
}

struct Guarded {
    body: BoxBody,
    _guard: BodyGuard,
}

impl MessageBody for Guarded {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The request with its body (if it has one) bounded in time, and the guard that keeps the
/// body's reader alive until the answer is written.
fn with_body_deadline(req: Request, limit: Duration) -> (Request, Option<BodyGuard>) {
    let (req, payload) = req.replace_payload(Payload::None);
    if matches!(payload, Payload::None) {
        return (req, None);
    }
    let body = Rc::new(RefCell::new(payload));
    let timed: actix_http::BoxedPayloadStream = Box::pin(BodyDeadline {
        body: Rc::clone(&body),
        timer: Box::pin(actix_web::rt::time::sleep(limit)),
    });
    let (req, _) = req.replace_payload(Payload::Stream { payload: timed });
    (req, Some(BodyGuard { _reader: body }))
}

/// A request body that fails once its time is up (and the connection with it).
struct BodyDeadline {
    body: Rc<RefCell<Payload>>,
    timer: Pin<Box<actix_web::rt::time::Sleep>>,
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.body.borrow_mut()).poll_next(cx);
        if let Poll::Ready(item) = polled {
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
