# A worker for the frames `pixgram recv --publish nats://...` puts on NATS (issue 17). pip install nats-py
import asyncio, json, sys, nats

async def main(url=sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"):
    nc = await nats.connect(url)
    async def on_frame(msg):  # msg.data: the frame's bytes, as the camera sent them
        meta = json.loads((msg.headers or {}).get("Pixgram-Meta", "{}"))
        print(msg.subject, meta.get("name"), len(msg.data), "bytes", flush=True)
    await nc.subscribe("pixgram.frames.>", queue="workers", cb=on_frame)  # one of the group gets each
    await nc.flush(); print("subscribed", flush=True); await asyncio.Event().wait()
asyncio.run(main())
