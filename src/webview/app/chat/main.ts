import { isChatTabState, type ChatSnapshot, type TranscriptEntry } from '../../../protocol/messages';
import { Rpc } from '../shared/rpc';

/**
 * The chat tab's app. It keeps only identity in `setState`; the transcript always comes from the host
 * (the database), and a gap in append sequence numbers triggers a full resync.
 */
const rpc = new Rpc('chat');
const root = document.getElementById('transcript');
let seq = 0;

function render(entry: TranscriptEntry): HTMLElement {
	const el = document.createElement('div');
	el.className = `entry entry-${entry.kind}`;
	el.dataset.id = entry.id;
	el.textContent = entry.text;
	return el;
}

function show(snapshot: ChatSnapshot): void {
	seq = snapshot.seq;
	root?.replaceChildren(...snapshot.entries.map(render));
	rpc.api.setState({ v: 1, chatId: snapshot.chatId });
}

rpc.on('chat/didChange', show);
rpc.on('chat/didAppend', ({ chatId, seq: next, entry }) => {
	if (next !== seq + 1) {
		void rpc.request('chat/open', { chatId }).then(show);
		return;
	}
	seq = next;
	root?.append(render(entry));
});

const state = rpc.api.getState();
if (isChatTabState(state)) {
	void rpc.request('chat/open', { chatId: state.chatId }).then(show);
}
