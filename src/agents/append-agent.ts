// Owns: adding a managed agent to org.yaml text with the `yaml` Document API, so comments,
// ordering and formatting of the rest of the file stay as they were. PURE: text in, text out
// (the CLI validates the result with the policy loader before it replaces the file).
import { Document, isMap, isScalar, parseDocument, YAMLMap } from 'yaml';

export interface NewAgent {
  name: string;
  team: string;
  project?: string | undefined;
  every?: string | undefined;
  command: readonly string[];
  /** Default: derived from the name ("SRE Monitor" → "sre-monitor"). */
  key?: string | undefined;
  budget?: { monthly_usd?: number; daily_usd?: number } | undefined;
}

export class AppendAgentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AppendAgentError';
  }
}

/** "SRE Monitor" → "sre-monitor". */
export function agentKeyFor(name: string): string {
  return name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

function entryText(key: string, agent: NewAgent, indent: number): string {
  const entry: Record<string, unknown> = { name: agent.name, team: agent.team };
  if (agent.project) entry['project'] = agent.project;
  if (agent.every) entry['every'] = agent.every;
  entry['command'] = [...agent.command];
  if (agent.budget) entry['budget'] = agent.budget;
  const doc = new Document({ [key]: entry });
  const node = (doc.contents as YAMLMap).get(key, true) as unknown as YAMLMap;
  for (const k of ['command', 'budget']) {
    const n = node.get(k, true) as { flow?: boolean } | undefined;
    if (n) n.flow = true;
  }
  const pad = ' '.repeat(indent);
  return doc.toString({ flowCollectionPadding: false, indent: 2 }).trimEnd().split('\n').map((l) => pad + l).join('\n');
}

function columnOf(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1);
}

/**
 * The new org.yaml text with the agent added at the end of `agents:`. Existing text is kept byte
 * for byte: the entry is inserted after the last agent, indented like the others.
 */
export function appendAgent(orgText: string, agent: NewAgent): { text: string; key: string } {
  const key = agent.key ?? agentKeyFor(agent.name);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(key)) throw new AppendAgentError(`cannot make an agent key from "${agent.name}"; pass --key`);
  const doc = parseDocument(orgText);
  if (doc.errors.length > 0) throw new AppendAgentError(`org.yaml does not parse: ${doc.errors[0]!.message}`);
  if (!isMap(doc.contents)) throw new AppendAgentError('org.yaml must be a mapping');
  const agents = doc.get('agents', true);
  if (agents !== undefined && agents !== null && isMap(agents) && agents.has(key)) {
    throw new AppendAgentError(`an agent "${key}" exists already in org.yaml`);
  }
  if (agents !== undefined && agents !== null && !isMap(agents) && !(isScalar(agents) && agents.value === null)) {
    throw new AppendAgentError('agents: in org.yaml is not a mapping');
  }
  let text: string;
  if (isMap(agents) && !agents.flow && agents.items.length > 0) {
    const first = agents.items[0]!.key as { range?: [number, number, number] };
    const last = agents.items[agents.items.length - 1]!;
    const lastEnd = ((last.value ?? last.key) as { range?: [number, number, number] }).range?.[1];
    if (first.range === undefined || lastEnd === undefined) throw new AppendAgentError('cannot locate agents: in org.yaml');
    const indent = columnOf(orgText, first.range[0]);
    // lastEnd can sit after the newline of a block value; back up to the end of its last line.
    let at = lastEnd;
    while (at > 0 && (orgText[at - 1] === '\n' || orgText[at - 1] === ' ')) at--;
    const nl = orgText.indexOf('\n', at);
    const insertAt = nl === -1 ? orgText.length : nl;
    text = `${orgText.slice(0, insertAt)}\n${entryText(key, agent, indent)}${nl === -1 ? '\n' : ''}${orgText.slice(insertAt)}`;
  } else if (agents === undefined) {
    text = `${orgText.replace(/\n*$/, '\n')}\nagents:\n${entryText(key, agent, 2)}\n`;
  } else {
    // `agents:` empty or in flow style: let the library rewrite the file.
    if (!isMap(agents)) doc.set('agents', new YAMLMap());
    (doc.get('agents', true) as YAMLMap).set(key, doc.createNode({ name: agent.name, team: agent.team, ...(agent.project ? { project: agent.project } : {}), ...(agent.every ? { every: agent.every } : {}), command: [...agent.command] }));
    text = doc.toString({ flowCollectionPadding: false });
  }
  const check = parseDocument(text);
  if (check.errors.length > 0 || !isMap(check.get('agents', true)) || !(check.get('agents', true) as YAMLMap).has(key)) {
    throw new AppendAgentError('internal: the new org.yaml text does not hold the agent; nothing written');
  }
  return { text, key };
}
