import type { MessageInitShape } from "@bufbuild/protobuf";
import { Role, type MessageSchema } from "../gen/llmgateway/v1/chat_pb.js";

/** userText builds a user message of plain text. */
export function userText(text: string): MessageInitShape<typeof MessageSchema> {
  return { role: Role.USER, content: [{ part: { case: "text", value: text } }] };
}

/** systemText builds a system message of plain text. */
export function systemText(text: string): MessageInitShape<typeof MessageSchema> {
  return { role: Role.SYSTEM, content: [{ part: { case: "text", value: text } }] };
}
