--- slm_lsp.ghost: a small ghost-text client for Neovim 0.11, which has no
--- vim.lsp.inline_completion. On insert-mode edits (debounced) it sends
--- textDocument/inlineCompletion itself and shows the first item as extmarks:
--- the first line inline at the cursor, the rest as virtual lines.
local M = {}

local api = vim.api
local METHOD = 'textDocument/inlineCompletion'
local AUTOMATIC = 2 -- lsp.InlineCompletionTriggerKind.Automatic
local ns = api.nvim_create_namespace('slm_lsp.ghost')

--- Per-buffer state.
--- @class (private) slm_lsp.ghost.State
--- @field client_id integer
--- @field debounce_ms integer
--- @field timer? uv.uv_timer_t
--- @field request_id? integer
--- @field item? table the suggestion on screen: text, row, col (cursor), start/end cols, tick
--- @type table<integer, slm_lsp.ghost.State>
local state = {}

local function set_highlight()
  api.nvim_set_hl(0, 'SlmGhost', { link = 'Comment', default = true })
end

local function cursor()
  local pos = api.nvim_win_get_cursor(0)
  return pos[1] - 1, pos[2]
end

--- Hide the suggestion and cancel the request in flight.
--- @param bufnr integer
function M.clear(bufnr)
  local s = state[bufnr]
  if not s then
    return
  end
  if s.timer then
    s.timer:stop()
  end
  local client = vim.lsp.get_client_by_id(s.client_id)
  if s.request_id and client then
    client:cancel_request(s.request_id)
  end
  s.request_id, s.item = nil, nil
  if api.nvim_buf_is_valid(bufnr) then
    api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

--- Plain text of an item (a snippet shows its placeholders' text).
local function item_text(item)
  local t = item.insertText
  if type(t) == 'table' then
    local plain = t.value:gsub('%${%d+:?([^}]*)}', '%1'):gsub('%$%d+', '')
    return plain, t.value
  end
  return t, nil
end

--- Byte column of an LSP position on `row`, or nil when it is on another line.
local function byte_col(bufnr, row, pos, encoding)
  if pos.line ~= row then
    return nil
  end
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, true)[1]
  return vim.str_byteindex(line, encoding, pos.character, false)
end

--- Show `item` at the cursor; returns false when it does not fit what is typed.
local function show(bufnr, s, item, client)
  local row, col = cursor()
  local text, snippet = item_text(item)
  if not text or text == '' then
    return false
  end
  local start_col, end_col = col, col
  if item.range then
    start_col = byte_col(bufnr, row, item.range.start, client.offset_encoding)
    end_col = byte_col(bufnr, row, item.range['end'], client.offset_encoding)
    if not start_col or not end_col or start_col > col then
      return false
    end
  end
  local line = api.nvim_buf_get_lines(bufnr, row, row + 1, true)[1]
  local typed = line:sub(start_col + 1, col)
  if text:sub(1, #typed) ~= typed then
    return false
  end
  local lines = vim.split(text:sub(#typed + 1), '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    virt_lines[#virt_lines + 1] = { { lines[i], 'SlmGhost' } }
  end
  api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  api.nvim_buf_set_extmark(bufnr, ns, row, col, {
    virt_text = { { lines[1], 'SlmGhost' } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
  s.item = {
    text = text,
    snippet = snippet,
    command = item.command,
    row = row,
    col = col,
    start_col = start_col,
    end_col = math.max(end_col, col),
    tick = api.nvim_buf_get_changedtick(bufnr),
  }
  return true
end

--- Ask the server for a suggestion at the cursor.
--- @param bufnr integer
function M.request(bufnr)
  local s = state[bufnr]
  local client = s and vim.lsp.get_client_by_id(s.client_id)
  if not client or api.nvim_get_current_buf() ~= bufnr or not api.nvim_get_mode().mode:match('^i') then
    return
  end
  M.clear(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = AUTOMATIC }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local row, col = cursor()
  local ok, id
  ok, id = client:request(METHOD, params, function(err, result)
    if s.request_id == id then
      s.request_id = nil
    end
    if err or not result or api.nvim_get_current_buf() ~= bufnr then
      return
    end
    local r, c = cursor()
    if api.nvim_buf_get_changedtick(bufnr) ~= tick or r ~= row or c ~= col then
      return -- stale: the text or the cursor moved on
    end
    if not api.nvim_get_mode().mode:match('^i') then
      return
    end
    local items = result.items or result
    if items[1] then
      show(bufnr, s, items[1], client)
    end
  end, bufnr)
  s.request_id = ok and id or nil
end

--- Ask again `debounce_ms` after the last call.
local function schedule(bufnr)
  local s = state[bufnr]
  s.timer = s.timer or assert(vim.uv.new_timer())
  s.timer:stop()
  s.timer:start(s.debounce_ms, 0, vim.schedule_wrap(function()
    if state[bufnr] then
      M.request(bufnr)
    end
  end))
end

--- Whether a suggestion is on screen for the cursor as it is now.
--- @param bufnr integer
--- @return boolean
function M.visible(bufnr)
  local s = state[bufnr]
  if not s or not s.item then
    return false
  end
  local row, col = cursor()
  return s.item.row == row and s.item.col == col and s.item.tick == api.nvim_buf_get_changedtick(bufnr)
end

--- Insert the suggestion on screen. Returns false when there is none, so an
--- <expr> mapping can fall back to the key itself. The edit is scheduled,
--- since an <expr> mapping may not change the buffer.
--- @param bufnr? integer
--- @return boolean
function M.accept(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  if not M.visible(bufnr) then
    return false
  end
  local s = state[bufnr]
  local item = s.item
  M.clear(bufnr)
  vim.schedule(function()
    local row = item.row
    if item.snippet then
      api.nvim_buf_set_text(bufnr, row, item.start_col, row, item.end_col, { '' })
      api.nvim_win_set_cursor(0, { row + 1, item.start_col })
      vim.snippet.expand(item.snippet)
    else
      local lines = vim.split(item.text, '\n', { plain = true })
      api.nvim_buf_set_text(bufnr, row, item.start_col, row, item.end_col, lines)
      local last_col = (#lines == 1 and item.start_col or 0) + #lines[#lines]
      api.nvim_win_set_cursor(0, { row + #lines, last_col })
    end
    local client = vim.lsp.get_client_by_id(s.client_id)
    if item.command and client then
      client:exec_cmd(item.command, { bufnr = bufnr })
    end
  end)
  return true
end

--- Start showing suggestions from `client` in `bufnr`.
--- @param bufnr integer
--- @param client vim.lsp.Client
--- @param debounce_ms integer
function M.attach(bufnr, client, debounce_ms)
  if state[bufnr] then
    M.detach(bufnr)
  end
  set_highlight()
  state[bufnr] = { client_id = client.id, debounce_ms = debounce_ms }
  local group = api.nvim_create_augroup('slm_lsp.ghost.' .. bufnr, { clear = true })
  api.nvim_create_autocmd({ 'InsertEnter', 'TextChangedI', 'CursorMovedI' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      if not M.visible(bufnr) then
        M.clear(bufnr)
        schedule(bufnr)
      end
    end,
  })
  api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = group,
    buffer = bufnr,
    callback = function()
      M.clear(bufnr)
    end,
  })
  api.nvim_create_autocmd('ColorScheme', { group = group, callback = set_highlight })
  api.nvim_create_autocmd('LspDetach', {
    group = group,
    buffer = bufnr,
    callback = function(args)
      if args.data.client_id == client.id then
        M.detach(bufnr)
      end
    end,
  })
end

--- Stop showing suggestions in `bufnr`.
--- @param bufnr integer
function M.detach(bufnr)
  local s = state[bufnr]
  if not s then
    return
  end
  M.clear(bufnr)
  if s.timer and not s.timer:is_closing() then
    s.timer:close()
  end
  state[bufnr] = nil
  pcall(api.nvim_del_augroup_by_name, 'slm_lsp.ghost.' .. bufnr)
end

--- Whether the fallback is active in `bufnr`.
--- @param bufnr integer
function M.attached(bufnr)
  return state[bufnr] ~= nil
end

M.namespace = ns

return M
