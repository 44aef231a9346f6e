// English and Chinese. Keys are the English text; a key missing from a table shows in English.
// The choice lives in the config's settings.language (PUT /api/settings); localStorage is the fallback
// for a browser that is not logged in or whose user may not change settings (a group admin).

const ZH = {
  'Dashboard': '仪表盘', 'Channels': '渠道', 'Presets': '预设', 'Conversations': '对话', 'Playground': '聊天测试',
  'Tools': '工具', 'MCP servers': 'MCP 服务器', 'Plugins': '插件', 'Commands': '命令', 'Platforms': '平台',
  'Groups': '群管理', 'Logs': '日志', 'Audit': '审计', 'Config': '配置', 'Settings': '设置',
  'Log in': '登录', 'Log out': '退出登录', 'Password': '密码', 'Username': '用户名', 'Login link token': '登录链接令牌',
  'Group code': '群管理码', 'Group admins: the 6-character code from the group command': '群管理员：群内命令获得的 6 位管理码',
  'Menu': '菜单', 'Theme': '主题', 'Language': '语言', 'Light': '浅色', 'Dark': '深色', 'Auto': '跟随系统',
  'Toggle theme': '切换主题', 'Loading…': '加载中…', 'Save': '保存', 'Cancel': '取消', 'Delete': '删除', 'Edit': '编辑',
  'Create': '新建', 'Test': '测试', 'Models': '模型', 'Refresh': '刷新', 'Close': '关闭', 'Name': '名称', 'Status': '状态',
  'Enabled': '启用', 'Disabled': '已禁用', 'Actions': '操作', 'Type': '类型', 'Base URL': '接口地址', 'API key': 'API 密钥',
  'Priority': '优先级', 'Weight': '权重', 'Model': '模型', 'Description': '描述', 'System prompt': '系统提示词',
  'Default': '默认', 'Set default': '设为默认', 'Copy': '复制', 'Export': '导出', 'Import': '导入', 'New id': '新 ID',
  'Instances': '实例', 'Components': '组件', 'Statistics': '统计', 'Messages': '消息', 'Tokens': 'Tokens',
  'Live events': '实时事件', 'Waiting for events…': '等待事件…', 'Uptime': '运行时间', 'Version': '版本',
  'Messages and tokens while this page is open': '本页打开期间的消息与 Token 数', 'Calls': '调用', 'Failed': '失败',
  'Avg latency (ms)': '平均延迟 (ms)', 'Conversations total': '对话总数', 'Today': '今日', 'Total': '总计',
  'Send': '发送', 'Message': '消息', 'Stop': '停止', 'New conversation': '新对话', 'Conversation id': '对话 ID',
  'Clear': '清空上下文', 'Detail': '详情', 'No items': '暂无数据', 'Previous': '上一页', 'Next': '下一页',
  'Dangerous': '危险', 'Tool tester': '工具测试', 'Arguments (JSON)': '参数 (JSON)', 'Run': '运行', 'Tool logs': '工具日志',
  'Result': '结果', 'Duration': '耗时', 'Allow dangerous tools': '允许危险工具', 'Source': '来源', 'Category': '分类',
  'Level': '级别', 'Service': '服务', 'Search': '搜索', 'Live': '实时', 'Paused': '已暂停', 'Pause': '暂停', 'Resume': '继续',
  'Stored logs': '历史日志', 'Stream': '流', 'Actor': '操作者', 'Time': '时间', 'History': '历史', 'Rollback': '回滚',
  'Section': '配置段', 'Changed paths': '变更路径', 'Rollback to this version?': '回滚到该版本？',
  'Delete this item?': '确定删除？', 'Saved': '已保存', 'Done': '完成', 'Group': '群', 'Overrides (JSON)': '覆盖配置 (JSON)',
  'Remove overrides': '删除覆盖', 'Stream history': '流历史', 'Events': '事件', 'Filter': '筛选', 'Apply': '应用',
  'Upstream answer': '上游回复', 'Elapsed (ms)': '耗时 (ms)', 'Upload a JSON or YAML preset file': '上传 JSON 或 YAML 预设文件',
  'Health': '健康', 'Last error': '最近错误', 'Tested at': '测试时间', 'Role': '角色', 'Host': '主机', 'Last heartbeat': '最近心跳',
  'Tool calls': '工具调用', 'Settings are stored in the config (settings section).': '设置保存在配置的 settings 段中。',
  'Signed in as': '当前用户', 'Preset': '预设', 'Channel': '渠道', 'none': '无', 'Error': '错误', 'Value (JSON)': '值 (JSON)',
  'Overwrite existing': '覆盖已存在的', 'Connected': '已连接', 'Disconnected': '未连接', 'Read-only for group admins': '群管理员只读',
  'Skip to content': '跳到正文', 'Platform': '平台', 'Clear list': '清空列表', 'Temperature': '温度', 'Max tokens': '最大 Tokens', 'Category toggles': '分类开关',
  'Transport': '传输方式', 'Timeout (s)': '超时 (秒)', 'Command': '命令', 'Arguments (one per line)': '参数 (每行一个)',
  'Working directory': '工作目录', 'Environment': '环境变量', 'Environment (KEY=VALUE per line)': '环境变量 (每行 KEY=VALUE)',
  'URL': 'URL', 'Headers': '请求头', 'Headers (Name: value per line)': '请求头 (每行 名称: 值)',
  'Secret values are shown masked; leave them as they are to keep them.': '密钥值以掩码显示；保持不变即保留原值。',
  'Reconnect automatically': '自动重连', 'Connect': '连接', 'Disconnect': '断开', 'Reconnect': '重连',
  'Connected at': '连接时间', 'Import Claude Desktop JSON': '导入 Claude Desktop JSON', 'Claude Desktop JSON': 'Claude Desktop JSON',
  'Imported': '已导入', 'Bot account (self id)': '机器人账号 (self id)', 'Access token': '访问令牌',
  'Leave the access token blank to keep the stored one.': '访问令牌留空即保留原值。', 'Connect a QQ bot': '连接 QQ 机器人',
  'OneBot v11 reverse WebSocket URL': 'OneBot v11 反向 WebSocket 地址',
  'In NapCat: network settings, add a WebSocket client with this URL and the platform access token.': '在 NapCat 网络配置中添加 WebSocket 客户端，填入此地址和该平台的访问令牌。',
  'Received': '接收', 'Sent': '发送', 'Errors': '错误数', 'Last event': '最近事件', 'In error': '异常',
  'Upload a plugin': '上传插件', 'Plugin zip': '插件 zip 包', 'Made with: chatbus plugin pack <folder>': '用 chatbus plugin pack <目录> 打包',
  'Upload': '上传', 'Uploaded': '已上传', 'Enable': '启用', 'Disable': '禁用', 'Reload': '重载', 'Updated': '更新时间',
  'This plugin declares no settings.': '此插件没有可配置项。', 'Other settings (JSON)': '其他配置 (JSON)',
  'Rename': '重命名', 'New name': '新名称', 'Aliases (comma separated)': '别名 (逗号分隔)', 'Aliases': '别名',
  'Plugin': '插件', 'Permission': '权限', 'Conflict': '冲突', 'Conflicts': '冲突', 'No conflicts': '没有冲突',
  'Originally': '原名', 'Resolution': '处理方式', 'Resolve': '解决',
  'Keep the first, disable the second': '保留第一个，禁用第二个', 'Keep the second, disable the first': '保留第二个，禁用第一个',
  'Rename the first': '重命名第一个', 'Rename the second': '重命名第二个',
};

const TABLES = { en: {}, 'zh-CN': ZH };
const KEY = 'chatbus.language';

let current = normalise(localStorage.getItem(KEY) || navigator.language || 'en');

export function normalise(lang) {
  return String(lang || '').toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export function language() { return current; }

export function setLanguage(lang) {
  current = normalise(lang);
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current === 'zh-CN' ? 'zh-CN' : 'en';
  return current;
}

export function t(key) {
  return TABLES[current][key] || key;
}

setLanguage(current);
