//! Host slots written on a thread of their own: a lane whose decoder hands its pictures out
//! ([`FrameDecoder::writes_off_thread`], a CPU decoder with frame threads) sends each wanted picture with its slot
//! to a writer thread and goes straight back to feeding the decoder, so that the copy or colour conversion of one
//! picture runs while the decoding threads work on the next ones instead of between them.
//!
//! The writer is a scoped thread that lives for one request: the slots it writes borrow the batch, and the request
//! returns only after the writer has written every picture it was sent (or stopped at the first error).

use std::sync::mpsc::{sync_channel, SyncSender};
use std::time::{Duration, Instant};

use crate::backend::{FrameDecoder, FrameSink, HostPicture};
use crate::error::{Error, Result};
use crate::frame::color::ColorType;
use crate::frame::transform::ResizeTarget;

/// Pictures sent but not yet written: the decoder waits when the writer falls this far behind (each holds a
/// picture's buffers out of libavcodec's pool).
const QUEUE: usize = 4;

/// One host slot of a batch.
pub(crate) enum HostSlot<'a> {
    /// A frame at the stream's own size ([`FrameSink::Host`]).
    Bytes(&'a mut [u8]),
    /// f32 RGB values resized on the way ([`FrameSink::HostResized`]).
    Resized {
        values: &'a mut [f32],
        target: &'a ResizeTarget,
    },
}

impl HostSlot<'_> {
    fn sink(&mut self) -> FrameSink<'_> {
        match self {
            HostSlot::Bytes(bytes) => FrameSink::Host(bytes),
            HostSlot::Resized { values, target } => FrameSink::HostResized { values, target },
        }
    }
}

/// The slots of one request and the way to the writer thread that fills them.
pub(crate) struct DetachedSlots<'a> {
    /// Slot -> its memory, taken when its picture is sent.
    slots: Vec<Option<HostSlot<'a>>>,
    pictures: SyncSender<(Box<dyn HostPicture>, HostSlot<'a>)>,
}

impl DetachedSlots<'_> {
    /// Takes `decoder`'s current picture and sends it to the writer with slot `slot`.
    pub(crate) fn write(&mut self, decoder: &mut dyn FrameDecoder, slot: usize) -> Result<()> {
        let picture = decoder.detach_current().ok_or_else(|| {
            Error::Worker("the decoder gave no picture for the writer thread".into())
        })?;
        let memory = self
            .slots
            .get_mut(slot)
            .and_then(Option::take)
            .ok_or_else(|| Error::Worker(format!("batch slot {slot} was written twice")))?;
        self.pictures
            .send((picture, memory))
            .map_err(|_| Error::Worker("the frame writer thread stopped".into()))
    }
}

/// Runs `decode` with a writer thread for `slots`: `decode` gets the [`DetachedSlots`] to send pictures to (the
/// writer stops when they are dropped). Returns, once every picture sent is written, the time the writer spent
/// writing, and `decode`'s error, else the writer's first.
pub(crate) fn with_writer<'a>(
    color: ColorType,
    slots: Vec<Option<HostSlot<'a>>>,
    decode: impl FnOnce(DetachedSlots<'a>) -> Result<()>,
) -> (Duration, Result<()>) {
    std::thread::scope(|scope| {
        let (pictures, queue) = sync_channel::<(Box<dyn HostPicture>, HostSlot<'a>)>(QUEUE);
        let writer = std::thread::Builder::new()
            .name("vidloader-write".into())
            .spawn_scoped(scope, move || {
                let mut result = Ok(());
                let mut busy = Duration::ZERO;
                // After an error the rest are received and dropped, so that the decoding side never waits on a
                // full queue.
                for (picture, mut memory) in queue {
                    if result.is_ok() {
                        let t = Instant::now();
                        result = picture.write(color, memory.sink());
                        busy += t.elapsed();
                    }
                }
                (busy, result)
            });
        let writer = match writer {
            Ok(w) => w,
            Err(e) => {
                let e = Error::Worker(format!("cannot start the frame writer thread: {e}"));
                return (Duration::ZERO, Err(e));
            }
        };
        let decoded = decode(DetachedSlots { slots, pictures });
        let (busy, written) = writer.join().unwrap_or_else(|_| {
            let e = Error::Worker("the frame writer thread panicked".into());
            (Duration::ZERO, Err(e))
        });
        (busy, decoded.and(written))
    })
}
