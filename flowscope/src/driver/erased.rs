//! Parsers behind one message type: the driver holds factories of any
//! parser whose message converts into its own message type `M`, and one boxed
//! parser per flow (one allocation per parsed flow, none per packet).

use flowscope_core::{
    DatagramParser, DatagramParserFactory, FlowSide, ParserContext, Probe, SessionEvent,
    SessionParser, SessionParserFactory, Timestamp,
};

/// A stream parser with its message converted to `M`.
pub(crate) trait StreamParserDyn<M>: Send {
    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut dyn FnMut(SessionEvent<M>),
    );
    fn on_gap(
        &mut self,
        side: FlowSide,
        len: u64,
        ts: Timestamp,
        out: &mut dyn FnMut(SessionEvent<M>),
    );
    fn on_close(&mut self, ts: Timestamp, out: &mut dyn FnMut(SessionEvent<M>));
    fn is_poisoned(&self) -> bool;
    fn memory_used(&self) -> usize;
}

impl<P, M> StreamParserDyn<M> for P
where
    P: SessionParser + Send,
    P::Message: Into<M>,
{
    fn on_data(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut dyn FnMut(SessionEvent<M>),
    ) {
        SessionParser::on_data(self, side, data, ts, &mut |ev| out(ev.map(Into::into)));
    }
    fn on_gap(
        &mut self,
        side: FlowSide,
        len: u64,
        ts: Timestamp,
        out: &mut dyn FnMut(SessionEvent<M>),
    ) {
        SessionParser::on_gap(self, side, len, ts, &mut |ev| out(ev.map(Into::into)));
    }
    fn on_close(&mut self, ts: Timestamp, out: &mut dyn FnMut(SessionEvent<M>)) {
        SessionParser::on_close(self, ts, &mut |ev| out(ev.map(Into::into)));
    }
    fn is_poisoned(&self) -> bool {
        SessionParser::is_poisoned(self)
    }
    fn memory_used(&self) -> usize {
        SessionParser::memory_used(self)
    }
}

/// A datagram parser with its message converted to `M`.
pub(crate) trait DatagramParserDyn<M>: Send {
    fn on_datagram(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut dyn FnMut(SessionEvent<M>),
    );
    fn on_close(&mut self, ts: Timestamp, out: &mut dyn FnMut(SessionEvent<M>));
    fn memory_used(&self) -> usize;
}

impl<P, M> DatagramParserDyn<M> for P
where
    P: DatagramParser + Send,
    P::Message: Into<M>,
{
    fn on_datagram(
        &mut self,
        side: FlowSide,
        data: &[u8],
        ts: Timestamp,
        out: &mut dyn FnMut(SessionEvent<M>),
    ) {
        DatagramParser::on_datagram(self, side, data, ts, &mut |ev| out(ev.map(Into::into)));
    }
    fn on_close(&mut self, ts: Timestamp, out: &mut dyn FnMut(SessionEvent<M>)) {
        DatagramParser::on_close(self, ts, &mut |ev| out(ev.map(Into::into)));
    }
    fn memory_used(&self) -> usize {
        DatagramParser::memory_used(self)
    }
}

/// A stream parser factory producing boxed parsers of message `M`.
pub(crate) trait StreamFactoryDyn<M>: Send {
    fn name(&self) -> &'static str;
    fn probe(&self, ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe;
    fn make(&self, ctx: &ParserContext) -> Box<dyn StreamParserDyn<M>>;
}

impl<F, M> StreamFactoryDyn<M> for F
where
    F: SessionParserFactory + Send,
    F::Parser: Send + 'static,
    <F::Parser as SessionParser>::Message: Into<M>,
{
    fn name(&self) -> &'static str {
        SessionParserFactory::name(self)
    }
    fn probe(&self, ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe {
        SessionParserFactory::probe(self, ctx, side, data)
    }
    fn make(&self, ctx: &ParserContext) -> Box<dyn StreamParserDyn<M>> {
        Box::new(self.new_parser(ctx))
    }
}

/// A datagram parser factory producing boxed parsers of message `M`.
pub(crate) trait DatagramFactoryDyn<M>: Send {
    fn name(&self) -> &'static str;
    fn probe(&self, ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe;
    fn make(&self, ctx: &ParserContext) -> Box<dyn DatagramParserDyn<M>>;
}

impl<F, M> DatagramFactoryDyn<M> for F
where
    F: DatagramParserFactory + Send,
    F::Parser: Send + 'static,
    <F::Parser as DatagramParser>::Message: Into<M>,
{
    fn name(&self) -> &'static str {
        DatagramParserFactory::name(self)
    }
    fn probe(&self, ctx: &ParserContext, side: FlowSide, data: &[u8]) -> Probe {
        DatagramParserFactory::probe(self, ctx, side, data)
    }
    fn make(&self, ctx: &ParserContext) -> Box<dyn DatagramParserDyn<M>> {
        Box::new(self.new_parser(ctx))
    }
}
